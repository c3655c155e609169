"""Training with shardstream's loader: the DINO loop, checkpoints, k-NN evaluation, torchrun.

Import names from their modules (``loop``, ``config``, ``checkpoint``, ``evaluate``, ``knn``,
``run_folder``, ``run_log``, ``ssl_config``); :mod:`.config` is torch-free, so the command line
reads it without importing torch.
"""
