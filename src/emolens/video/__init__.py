"""Video and webcam analysis: streamed per-frame emotions, faces followed across frames, outputs.

* :mod:`.reader` decodes files and webcams into upright RGB frames with stream timestamps;
* :mod:`.regions` finds faces fast (full frames now and then, regions around tracks between);
* :mod:`.tracker` gives each face a track id (ByteTrack-like, timed in seconds);
* :mod:`.smoothing` smooths probabilities per track (time-aware EMA);
* :mod:`.stream` ties them together: :func:`.stream.iter_video` (also ``emolens.iter_video``);
* :mod:`.outputs` records a stream to CSV, Parquet, per-track summaries, timelines and MP4;
* :mod:`.live` shows a stream in a window or reports it on stderr.

Nothing is imported here, so ``import emolens.video`` stays cheap.
"""
