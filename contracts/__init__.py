"""Message and payload contracts: one marshmallow schema per message, imported by producer and
consumer alike. Nothing here imports a framework other than marshmallow."""
