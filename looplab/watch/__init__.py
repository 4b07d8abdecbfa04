"""Watch: what happens to a model once it serves. One concept, a *window* of one version's
served predictions, followed from start to finish:

* :mod:`~looplab.watch.windows`: what a window holds (latency, label mix) and its accuracy from
  feedback, counted when read;
* :mod:`~looplab.watch.monitor`: the ``monitor`` job, which closes windows and measures them;
* :mod:`~looplab.watch.reference`: a version's drift reference, and a window's drift and
  accuracy estimate against it (the tests themselves are in :mod:`~looplab.watch.drift`, the
  label-free estimate in :mod:`~looplab.watch.performance`);
* :mod:`~looplab.watch.triggers`: the rules that judge each closed window and queue actions:
  targeted labeling (:mod:`~looplab.watch.targeting`), retraining, alerts
  (:mod:`~looplab.watch.alerts`);
* :mod:`~looplab.watch.overview`: all of it read back for people (``looplab monitor``,
  ``/monitor``, the dashboard).
"""
