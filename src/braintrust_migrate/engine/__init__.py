"""The migration engine: generic over the resource types described in resources.py."""
