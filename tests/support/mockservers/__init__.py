"""Local mock provider servers that replay fixtures (one module per wire format)."""
