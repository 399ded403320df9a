"""The Python examples in docs/rewrites.md run and print what the chapter says.

Each ```python block is a doctest; the blocks run in order, sharing names, as a reader would type
them. (The chapter's ```console examples are run by tests/test_docs.py, with every other doc's.)
"""

from __future__ import annotations

import doctest
import re

from conftest import ROOT

CHAPTER = ROOT / "docs" / "rewrites.md"


def test_rewrites_chapter_python_examples():
    blocks = re.findall(r"```python\n(.*?)```", CHAPTER.read_text(), re.S)
    assert len(blocks) >= 5
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    # one doctest of all blocks (a DocTest copies its globals, so separate ones would not share names)
    test = parser.get_doctest("\n".join(blocks), {}, "rewrites.md", str(CHAPTER), 0)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 15
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in docs/rewrites.md failed (see above)"
