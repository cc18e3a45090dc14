"""Ground segment: decode quick-preview packets from a link into PNG previews and JSON sidecars."""
