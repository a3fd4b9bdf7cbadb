"""The real-time control layer: rate loop, safety layer, watchdog, asynchronous inference.

Everything that drives a robot (deploy, record, teleop, eval on hardware) goes through it:

* :mod:`robolearn.control.clock` — the clock protocol (``now``/``wait_until``), a fake clock;
* :mod:`robolearn.control.rate` — absolute-deadline rate loop with timing statistics;
* :mod:`robolearn.control.safety` — limits, e-stop and watchdog between policy and driver;
* :mod:`robolearn.control.inference` — policy in a worker process, chunk smoothing;
* :mod:`robolearn.control.runner` — joins a driver, a policy and the above into episodes.
"""
