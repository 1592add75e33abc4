"""Tooling around the ``flallm_plugin`` product: not loaded by ``--user-dir flallm_plugin``.

* :mod:`flallm_tools.synthetic`: synthetic sign languages in the real release layouts (the demo, the hard
  preset, the tests' coloured blocks);
* :mod:`flallm_tools.experiment` and :mod:`flallm_tools.cli.experiment`: ``flallm-experiment``, the paper's
  ablation tables from one command;
* :mod:`flallm_tools.forked_cli`: runs a console-script entry point in a forked child as a new process would.

The tooling imports the product; the product never imports the tooling (docs/architecture.md).
"""
