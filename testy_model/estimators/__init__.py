"""Per-action energy and area estimators behind one small interface, and one node parser.

- :func:`energy.energy_per_action` (pJ) and :func:`area.area` (µm²) for a component class
  (``DRAM``, ``SRAM``, ``RF``, ``register``, ``MAC_int``, ``MAC_fp``) of a given depth and width
  at a process node (and, for energy, a supply voltage): smooth fits through cited
  Accelergy/CACTI reference points (:mod:`.fit`, :mod:`.reference_points`);
- :func:`node.node_nm`: the one process-node parser; :mod:`.node`: the one node-scaling rule
  (Stillmaker & Baas 2017) for energy and area;
- :mod:`.voltage`: the voltage-frequency rule (alpha-power law) that makes a faster clock cost
  energy.

Accelergy ERT/ART files and numbers written in a spec are the other sources of the same
quantities (:mod:`testy_model.spec.accelergy`, :mod:`testy_model.spec.arch_loader`). The modules
are imported where used (``from testy_model.estimators.area import area``): :mod:`.area` reads the
spec types, which use the node parser.
"""
