"""Differential-testing harness against the real Timeloop v3.0.3 ``timeloop-model``.

Helpers only (no ``test_`` modules here, so pytest collects nothing from this package):

- :mod:`oracle.stats`: parser of ``timeloop-model.stats.txt`` into :class:`oracle.stats.RunStats`
  (the typed structure both tools are compared on);
- :mod:`oracle.gen`: seeded generator of random valid cases in Timeloop's v0.3 input format
  (building blocks in :mod:`oracle.cases` and :mod:`oracle.sparse_gen`, broken cases in
  :mod:`oracle.negative`, hand-made minimal cases in :mod:`oracle.minimal`);
- :mod:`oracle.formats`: Timeloop's word bits of each format rank of a case;
- :mod:`oracle.classify`: attribution of differences to the classes of ``docs/oracle_report.md``;
- :mod:`oracle.ours`: the one adapter that evaluates a case folder with this project;
- :mod:`oracle.compare`: quantity-by-quantity comparison and the summaries of a run;
- :mod:`oracle.timeloop`: runs the ``timeloop-model`` binary on a case folder.

``tests/`` is on ``sys.path`` under pytest (rootdir-relative imports), so tests import
``oracle.stats`` etc.; ``scripts/timeloop_diff.py`` adds it itself.
"""
