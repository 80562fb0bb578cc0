"""``/openapi.json`` and ``/docs``: the OpenAPI 3.1 document of the live route table, and Swagger UI."""
