"""One router per concern; `mien.api.app` wires them."""
