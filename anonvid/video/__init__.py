"""Anonymizing real video files: probing, chunked streaming with audio, the three methods, batch runs.

`anonvid anonymize` / `anonvid minimize` (see `anonvid.cli`) are built from:
  probe.py       what a file holds; clear errors for missing, empty, corrupt and non-video inputs
  codecs.py      encoders per output container; audio copied when the container can carry it
  transcode.py   decode → process chunk → encode, bounded memory, timestamps kept, atomic rename
  processors.py  the methods as chunk processors (minimize spec, tubelet pruner, UNet++ anonymizer)
  methods.py     `--method` + arguments → a per-file plan
  batch.py       output paths, up-front checks, progress bars, per-file summaries
  testclip.py    test videos with sound
"""
