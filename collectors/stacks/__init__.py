"""The engine's CPU stacks, sampled with py-spy (the ``stacks`` collector).

- :mod:`collectors.stacks.procs`: the engine's processes, their titles and roles, which are
  Python, where py-spy is and whether ptrace is allowed;
- :mod:`collectors.stacks.pyspy`: one ``py-spy record`` per process, ``py-spy dump``;
- :mod:`collectors.stacks.speedscope`: py-spy's speedscope files → threads and hot frames;
- :mod:`collectors.stacks.hangs`: dumps of every process when tokens stop;
- :mod:`collectors.stacks.tables`: the files written at the end;
- :mod:`collectors.stacks.collector`: :class:`StackCollector`, the Collector itself.
"""
