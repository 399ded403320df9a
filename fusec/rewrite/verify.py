"""The rule verifier: no rule ships unless a machine has checked it.

For each case (cases.py builds them) the verifier has a small graph made from the rule's own
pattern, with random shapes, dtypes, attributes and inputs chosen to break things: 0, -0, +-inf,
NaN, denormals, the largest and smallest normal numbers, and values at the edges of each op's domain
(where exp overflows or underflows, where tanh saturates, where x*x overflows). It evaluates the
pattern and the replacement with the reference interpreter and compares them under the rule's class.

What each class promises, and how it is checked:

* exact: bit-identical results on every input, specials included. NaN counts as one value: IEEE
  754 leaves the payload (and the sign) of a NaN result unspecified, x86 and NumPy do not preserve
  them across equivalent expressions, and no fusec backend promises them, so any NaN equals any NaN.
  -0 and +0 are different.
* approx: on finite inputs, wherever the original gives a finite value or NaN, the rewritten
  graph gives the same NaN placement and a value within the rule's tolerance (by default the
  project's, fusec.tolerance). Where the original overflows to inf, that element is not compared:
  an approx rule may avoid an overflow, never introduce one (after inf where before was finite fails).
* unsafe: as approx, but only on the domain the rule states with `assuming`.

A case where the guard is false, or where the replacement would not have the same type as the
matched node, is "not applicable" and does not count towards the cases tried.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.interp import evaluate
from fusec.ir.dtypes import DType
from fusec.rewrite.cases import VERIFY_DTYPES, Case, CaseMaker, SelfCheckError
from fusec.rewrite.rule import Rule
from fusec.tolerance import ATOL, RTOL, compare

DEFAULT_CASES = 200


# ------------------------------------------------------------------------------------------ results


def _fmt(v: Any) -> str:
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, DType):
        return v.name
    return repr(v)


@dataclass
class Counterexample:
    """One input on which a rule breaks its promise, with the values on both sides."""

    dtype: str
    shape: tuple[int, ...]
    index: tuple[int, ...]
    values: dict[str, Any]  # each variable's value at the failing element (constants, attributes)
    before: Any
    after: Any
    reason: str

    def __str__(self) -> str:
        where = f"[{', '.join(map(str, self.index))}]" if self.index else "(a scalar)"
        lines = [f"counterexample ({self.dtype}, result shape [{', '.join(map(str, self.shape))}], element {where}):"]
        for name, v in self.values.items():
            lines.append(f"  {name} = {_fmt(v)}")
        lines.append(f"  pattern gives     {_fmt(self.before)}")
        lines.append(f"  replacement gives {_fmt(self.after)}")
        lines.append(f"  {self.reason}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "index": list(self.index),
            "values": {k: _fmt(v) for k, v in self.values.items()},
            "before": _fmt(self.before),
            "after": _fmt(self.after),
            "reason": self.reason,
        }


@dataclass
class VerifyResult:
    rule: Rule
    passed: bool
    cases: int  # applicable cases checked
    elements: int = 0  # elements compared over all cases
    not_applicable: int = 0  # generated cases where the guard was false or the types did not fit
    excluded: int = 0  # elements not compared because the original overflowed (approx, unsafe)
    dtypes: tuple[str, ...] = ()
    counterexample: Counterexample | None = None
    error: str | None = None
    witness: Counterexample | None = None  # unsafe rules: an input outside the domain where it breaks

    def __str__(self) -> str:
        head = "PASS" if self.passed else "FAIL"
        text = f"{head} {self.rule.name} [{self.rule.cls}]: {self.cases} cases, {self.elements} elements ({', '.join(self.dtypes) or 'no dtype'})"
        if self.error:
            text += f"\n  {self.error}"
        if self.counterexample is not None:
            text += "\n" + "\n".join("  " + line for line in str(self.counterexample).splitlines())
        if self.witness is not None:
            text += "\n  why it is unsafe: outside its domain, " + "\n  ".join(str(self.witness).splitlines())
        return text

    def to_json(self) -> dict:
        return {
            "name": self.rule.name,
            "class": self.rule.cls,
            "passed": self.passed,
            "cases": self.cases,
            "elements": self.elements,
            "not_applicable": self.not_applicable,
            "excluded_overflow": self.excluded,
            "dtypes": list(self.dtypes),
            "error": self.error,
            "counterexample": self.counterexample.to_json() if self.counterexample else None,
            "unsafe_witness": self.witness.to_json() if self.witness else None,
        }


# ------------------------------------------------------------------------------------------ checking


def _bitwise_mismatch(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Elements that are not bit-identical; any NaN equals any NaN."""
    if before.dtype.kind == "f":
        bits = before.dtype.str.replace("f", "u")
        same = (before.view(bits) == after.view(bits)) | (np.isnan(before) & np.isnan(after))
        return ~same
    return before != after


def _tolerances(rule: Rule, dtype: np.dtype) -> tuple[float, float]:
    name = "f32" if dtype == np.float32 else "f64"
    rtol = rule.tolerance.rtol if rule.tolerance.rtol is not None else RTOL[name]
    atol = rule.tolerance.atol if rule.tolerance.atol is not None else ATOL[name]
    return rtol, atol


def _check(rule: Rule, case: Case, before: np.ndarray, after: np.ndarray) -> tuple[int, int, tuple | None, str]:
    """(elements compared, elements excluded, failing index or None, reason)."""
    if before.shape != after.shape or before.dtype != after.dtype:
        return 0, 0, (), f"the replacement is {after.dtype}{list(after.shape)}, the pattern {before.dtype}{list(before.shape)}"
    if rule.cls == "exact":
        bad = _bitwise_mismatch(before, after)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return before.size, 0, idx, "exact rule: the results are not bit-identical"
        return before.size, 0, None, ""
    excluded = np.isinf(before) if before.dtype.kind == "f" else np.zeros(before.shape, dtype=bool)
    keep = ~excluded
    b, a = before[keep], after[keep]
    positions = np.argwhere(keep)
    if before.dtype.kind != "f":
        m = compare(a, b)
        if m is not None:
            return int(keep.sum()), int(excluded.sum()), tuple(int(i) for i in positions[m.index[0]]), f"{rule.cls} rule: integer results differ"
        return int(keep.sum()), int(excluded.sum()), None, ""
    rtol, atol = _tolerances(rule, before.dtype)
    if rule.tolerance.scale == "result":
        m = compare(a, b, rtol=rtol, atol=atol)
        reason = f"{rule.cls} rule: {m.reason} (rtol={rtol:g}, atol={atol:g})" if m else ""
    else:
        m = compare(a, b, rtol=np.inf, atol=np.inf)  # NaN and inf placement only
        reason = f"{rule.cls} rule: {m.reason}" if m else ""
        if m is None:
            scale = np.abs(before.astype(np.float64))
            for v in case.values.values():
                arr = np.asarray(v)
                if arr.dtype.kind in "fiu":
                    try:
                        mag = np.broadcast_to(np.abs(arr.astype(np.float64)), before.shape)
                    except ValueError:
                        continue
                    scale = np.maximum(scale, np.where(np.isfinite(mag), mag, 0.0))
            with np.errstate(all="ignore"):
                err = np.abs(a.astype(np.float64) - b.astype(np.float64))
                over = np.isfinite(b) & (err > atol + rtol * scale[keep])
            if over.any():
                i = int(np.argmax(np.where(over, err, -1.0)))
                return int(keep.sum()), int(excluded.sum()), tuple(int(j) for j in positions[i]), (
                    f"{rule.cls} rule: error {err[i]:.3g} exceeds {atol:g} + {rtol:g} x {scale[keep][i]:.3g} (the largest operand)"
                )
    if m is not None:
        return int(keep.sum()), int(excluded.sum()), tuple(int(j) for j in positions[m.index[0]]), reason
    return int(keep.sum()), int(excluded.sum()), None, ""


def _counterexample(case: Case, before: np.ndarray, after: np.ndarray, index: tuple, reason: str) -> Counterexample:
    values = {}
    for name, v in case.values.items():
        arr = np.asarray(v) if not isinstance(v, (tuple, DType)) and v is not None else None
        if arr is not None and arr.dtype.kind in "fiub" and arr.ndim > 0:
            try:
                values[name] = np.broadcast_to(arr, before.shape)[index]
            except ValueError:
                values[name] = arr
        else:
            values[name] = v
    b = before[index] if before.ndim else before
    a = after[index] if after.ndim else after
    return Counterexample(case.dtype.name, tuple(before.shape), tuple(index), values, b, a, reason)


def _allowed_dtypes(rule: Rule, maker: CaseMaker) -> list[DType]:
    allowed = []
    for dt in VERIFY_DTYPES:
        try:
            if any(maker.make(dt) is not None for _ in range(40)):
                allowed.append(dt)
        except SelfCheckError:
            allowed.append(dt)  # verify_rule meets the same error and reports it
    return allowed


def verify_rule(rule: Rule, cases: int = DEFAULT_CASES, seed: int = 0) -> VerifyResult:
    """Check `rule` against the interpreter on `cases` applicable random cases.

    Returns a VerifyResult: passed, the number of cases tried and, on failure, a counterexample.
    """
    if cases < 1:
        raise FusecError(f"--cases must be at least 1, got {cases}")
    rng = np.random.default_rng([seed, zlib.crc32(rule.name.encode())])
    maker = CaseMaker(rule, rng)
    allowed = _allowed_dtypes(rule, maker)
    result = VerifyResult(rule, passed=False, cases=0, dtypes=tuple(d.name for d in allowed))
    if not allowed:
        result.error = "no applicable case: for every dtype the pattern does not type-check or the guard is false"
        return result
    attempts = 0
    while result.cases < cases and attempts < cases * 40:
        attempts += 1
        dtype = allowed[int(rng.integers(0, len(allowed)))]
        try:
            case = maker.make(dtype)
        except SelfCheckError as err:
            result.error = str(err)
            return result
        if case is None:
            result.not_applicable += 1
            continue
        values = evaluate(case.graph, case.inputs)
        before, after = np.asarray(values[case.root]), np.asarray(values[case.replacement])
        compared, excluded, index, reason = _check(rule, case, before, after)
        result.cases += 1
        result.elements += compared
        result.excluded += excluded
        if index is not None:
            result.counterexample = _counterexample(case, before, after, index, reason)
            return result
    if result.cases < cases:
        result.error = f"only {result.cases} applicable cases in {attempts} attempts (wanted {cases}); the guard is rarely true"
        return result
    result.passed = True
    if rule.cls == "unsafe":
        result.witness = _unsafe_witness(rule, rng, allowed, cases)
    return result


def _unsafe_witness(rule: Rule, rng: np.random.Generator, allowed: list[DType], cases: int) -> Counterexample | None:
    """An input, anywhere (specials included), where an unsafe rule misses the tolerance: the reason
    it is unsafe. None if none turned up, which suggests the rule may deserve a safer class."""
    maker = CaseMaker(rule, rng, anywhere=True)
    for _ in range(cases * 4):
        case = maker.make(allowed[int(rng.integers(0, len(allowed)))])
        if case is None:
            continue
        values = evaluate(case.graph, case.inputs)
        before, after = np.asarray(values[case.root]), np.asarray(values[case.replacement])
        rtol, atol = _tolerances(rule, before.dtype) if before.dtype.kind == "f" else (0.0, 0.0)
        m = compare(after, before, rtol=rtol, atol=atol)
        if m is not None:
            return _counterexample(case, before, after, m.index or (), f"{m.reason}: outside the domain the rule assumes")
    return None


def verify_rules(rules: list[Rule], cases: int = DEFAULT_CASES, seed: int = 0) -> list[VerifyResult]:
    return [verify_rule(r, cases=cases, seed=seed) for r in rules]
