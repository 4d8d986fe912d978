"""Networks as graphs: the zoo (``zoo``) and Network × Plan × Architecture → the dataflow graph
of term-GEMMs (``terms``)."""

from testy_model.graph.terms import build_graph, draw_graph, tensor_shape, term_nodes

__all__ = ["build_graph", "draw_graph", "tensor_shape", "term_nodes"]
