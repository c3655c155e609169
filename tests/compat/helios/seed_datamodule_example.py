"""The seed's DataModule example (002_*.txt), as written but for the lines marked ADAPTED.

The seed documents helios 1.x, whose ``self._train_dataset = self._create_dataset(...)`` form
helios 2.0 (which shardstream follows) replaced by ``_add_train_phase`` / ``_add_valid_dataset`` /
``_add_test_dataset``; those three statements are ADAPTED (helios 2.0) accordingly.

The import lines point at shardstream and at a local CIFAR10 stand-in (a tiny packed set; see
``data.CIFAR10``). The seed's ``...`` placeholders (``DataLoaderParams(...)``, ``{"batch_size":
1, ...}``) and the comment-only ``teardown`` body are not valid Python as written, so they are
filled in (also marked ADAPTED).
"""

from shardstream.compat import helios as data  # ADAPTED: from helios import data
from shardstream.compat.helios import DataLoaderParams  # ADAPTED: the seed uses it unimported

from .data import CIFAR10  # ADAPTED: from torchvision.datasets import CIFAR10


class MyDataModule(data.DataModule):
    def prepare_data(self) -> None:
        # Use this function to prepare the data for your datasets. This will
        # be called before the distributed processes are created (if using)
        # so you should not set any state here.
        CIFAR10(download=True)  # download the dataset only.

    def setup(self) -> None:
        # Create the training dataset using a DataLoaderParams instance. Note
        # that you MUST assign it to self._train_dataset.
        self._add_train_phase(  # ADAPTED (helios 2.0): self._train_dataset = self._create_dataset(
            CIFAR10(train=True),
            DataLoaderParams(batch_size=4, shuffle=True, pin_memory=False),  # ADAPTED: (...)
        )

        # It is also possible to create a dataset using a table of key-value
        # pairs that was loaded from a config file or manually created. Let's
        # use one to create the validation split:
        settings = {"batch_size": 1, "pin_memory": False}  # ADAPTED: {"batch_size": 1, ...}

        # We can now use it to assign to self._valid_dataset like this:
        self._add_valid_dataset(CIFAR10(train=False), settings)  # ADAPTED (helios 2.0)

        # Finally, if you need a testing split, you can create it like this:
        self._add_test_dataset(CIFAR10(train=False), settings)  # ADAPTED (helios 2.0)

    def teardown(self) -> None:
        # Use this function to clean up any state. It will be called after
        # training is done.
        ...  # ADAPTED: a body
