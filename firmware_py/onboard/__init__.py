"""``qpv onboard``: the daemon that captures frames, spools them and streams them as packets.

Stages, one module each: config (TOML + flags) -> sources (camera, watched
directory, test pattern) -> spool (frames and sent state on disk) -> policy (which
frame goes next, which are stale) -> daemon (encode, pace onto the link, recover).
"""
