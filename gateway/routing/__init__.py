"""REST routes learned from the backends' descriptors: templates, http rules, the route table, sources.

The contract lives once: every route comes from an RPC's `google.api.http` rule and its
`(portico.gateway.v1.route)` policy, read from descriptors fetched by server reflection or loaded from
a descriptor set. Nothing here keeps a second copy of a route.
"""
