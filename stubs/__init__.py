"""Generated Python stubs of the proto/ contract: do not edit, run scripts/gen_protos.py."""
