"""Hardware-in-the-loop timing harness: ``python hil/run.py`` (see docs/HIL.md).

Everything here measures the codec's real functions on the board it runs on, side by
side with libjpeg-turbo, and reports ratios, because ratios survive a noisy or
throttling board and absolute times do not.
"""
