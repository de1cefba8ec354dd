"""The languages gpttrace reads: bpftrace's lexer, used by the unsafe-call check, the explainer and the end
marker alike."""
