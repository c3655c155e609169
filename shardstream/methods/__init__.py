"""Methods: self-supervised training methods that consume shardstream's loaders.

- :mod:`shardstream.methods.dino`: stable_pretraining's DINO method (``DINO``, ``DINOv1Loss``,
  ``DINOProjector``, ``TeacherStudentWrapper``, schedules); needs torch.
- :mod:`shardstream.methods.train`: the DINO training loop, checkpoints, run folders and k-NN
  evaluation behind ``shardstream train`` / ``shardstream eval``.

The names re-exported at the package root are declared once, in :data:`shardstream.EXPORTS`.
"""
