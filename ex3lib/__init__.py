"""The ex3 report's library, split by what the code does; `helpers` is the notebook's one import of it.

settings (mode, folders, the recipe) -> runtime (device, precision, seeds) -> cache (checkpoints) ->
data (MNIST) -> autoencoder -> metrics, classifier -> transfer (section 3), gan (sections 4-5) ->
generation (judging generators) -> timing, tables -> report (the sections' rows) -> figures.
Each module imports only modules to its left.
"""
