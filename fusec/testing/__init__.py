"""Layer 1: helpers for testing fusec itself: random graphs and inputs (graphgen)."""

from fusec.testing.arrays import random_arrays
from fusec.testing.graphgen import GenConfig, build_graph, graphs, graphs_with_inputs, random_graph, replay_graph

__all__ = ["GenConfig", "build_graph", "graphs", "graphs_with_inputs", "random_arrays", "random_graph", "replay_graph"]
