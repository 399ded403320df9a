"""One compiled program called from several Python threads at once: every call gets its own result.

fusec.compile memoizes, so two threads that compile the same source get the same program object.
Its matmul kernels write BLAS tiles into a scratch array before the epilogue reads them, and
np.matmul releases the GIL: a scratch array shared by the threads would mix their tiles.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fusec
from fusec.inputs import random_inputs
from fusec.tolerance import compare_output

GRAPHS = {
    # a matmul with an epilogue into its output: BLAS writes each tile where it belongs
    "mlp": "graph mlp<N=192, K=64, M=96>(x: f32[N, K], w: f32[K, M], b: f32[M]) { return tanh(x @ w + b) }",
    # a bool result: BLAS writes f32 tiles into a scratch tile, the epilogue compares them
    "bool": "graph pos<N=192, K=64, M=96>(x: f32[N, K], w: f32[K, M], b: f32[M]) { return x @ w + b > 0.25 }",
    # an operand read through a reshape of a transpose: copied into a scratch array before BLAS
    "reshaped": "graph r<A=8, B=16, M=24>(x: f32[A, B, M], w: f32[M, 128]) "
                "{ return reshape(transpose(x, perm=[1, 0, 2]), shape=[B, A * M]) @ reshape(w, shape=[A * M, 16]) * 2.0 }",
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_threads_calling_one_program_get_their_own_results(name, backend):
    graph = fusec.parse(GRAPHS[name])
    program = fusec.compile(graph, backend=backend, tune_db=False)
    inputs = [random_inputs(graph, seed=s) for s in range(8)]
    expected = [np.asarray(fusec.interpret(graph, *xs)) for xs in inputs]

    def call(k: int) -> np.ndarray:
        results = [np.asarray(program(*inputs[k])).copy() for _ in range(20)]
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        for k, results in enumerate(pool.map(call, range(8))):
            for got in results:
                assert compare_output(graph, graph.outputs[0], got, expected[k]) is None, f"thread {k}"
