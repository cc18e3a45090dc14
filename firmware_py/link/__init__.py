"""The quick-preview link: packets, byte framing, fault injection and transports."""
