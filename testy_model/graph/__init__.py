"""Networks as graphs: the dataflow graph of operators and tensors (``dataflow``), the zoo
(``zoo``), Network × Plan × Architecture → the graph of term-GEMMs (``terms``), drawing
(``draw``) and ONNX export (``onnx_export``; imported on use)."""

from typing import Any

from testy_model.graph.dataflow import network_graph
from testy_model.graph.terms import build_graph, draw_graph, tensor_shape, term_nodes

__all__ = [
    "build_graph",
    "draw_graph",
    "export_onnx",
    "network_graph",
    "plot_network",
    "tensor_shape",
    "term_nodes",
]


def __getattr__(name: str) -> Any:
    """``plot_network`` and ``export_onnx`` import matplotlib / onnx only when used."""
    if name == "plot_network":
        from testy_model.graph.draw import plot_network

        return plot_network
    if name == "export_onnx":
        from testy_model.graph.onnx_export import export_onnx

        return export_onnx
    raise AttributeError(f"module 'testy_model.graph' has no attribute {name!r}")
