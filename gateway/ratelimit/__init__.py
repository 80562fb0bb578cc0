"""Rate limits at the edge: GCRA over several limits at once (per IP, per user, login), one Redis round
trip, with an in-process fallback when Redis is unreachable."""
