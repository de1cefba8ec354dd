"""The sections of an explanation, one module each: intro, probes, walkthrough, filters, maps, names,
output, overhead and what to read next. Each takes the explanation's Context and returns doc blocks."""
