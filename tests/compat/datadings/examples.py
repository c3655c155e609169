"""datadings' documented examples (seed 001), verbatim but for file names and sizes, and the
runner that executes one against the real datadings package or with ``datadings.`` replaced by
``shardstream.compat.datadings.`` (the only change a user makes)."""

from __future__ import annotations

import contextlib
import io
import os
import random
from pathlib import Path

import numpy as np

MIRROR = "shardstream.compat.datadings."


def run_example(source: str, package: str, cwd: Path, seed: int = 0) -> tuple[str, dict]:
    """Exec ``source`` in ``cwd`` against ``package`` (``"datadings."`` or :data:`MIRROR`) with
    ``random`` and numpy seeded; returns (stdout, namespace)."""
    code = source.replace("datadings.", package) if package != "datadings." else source
    namespace: dict = {"__name__": "example"}
    out = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        random.seed(seed)
        np.random.seed(seed)
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"<example {package}>", "exec"), namespace)
    finally:
        os.chdir(old)
    return out.getvalue(), namespace


# "Creating a custom dataset: A basic example" (+ its main() called)
WRITE_DUMMY = """
import random
from datadings.writer import FileWriter


def generate_samples():
    for i in range(1000):
        data = i.to_bytes(10000, 'big')
        label = random.randrange(10)
        yield {'key': str(i), 'data': data, 'label': label}


def main():
    with FileWriter('dummy.msgpack') as writer:
        for sample in generate_samples():
            writer.write(sample)

main()
"""

# "Converting directory trees"
WRITE_DIRECTORY = """
from datadings.writer import FileWriter
from datadings.reader import DirectoryReader

def main():
    with FileWriter('yourdataset.msgpack') as writer:
        for sample in DirectoryReader('yourdataset/{LABEL}/**'):
            writer.write(sample)

main()
"""

# "Usage": reading sequentially, specific samples, raw bytes, length, Shuffler, Cycler
READ_USAGE = """
from datadings.reader import MsgpackReader
with MsgpackReader('MIT1003.msgpack') as reader:
    for sample in reader:
        print(sample['key'], sample['label'])
    reader.seek_key('i14020903.jpeg')
    print(reader.next()['key'])
    reader.seek_index(100)
    print(reader.next()['key'])
    raw = reader.rawnext()
    print(type(raw), len(raw))
    for raw in reader.rawiter():
        print(type(raw), len(raw))
    print(len(reader))

from datadings.reader import Shuffler
with Shuffler(MsgpackReader('MIT1003.msgpack')) as reader:
    for sample in reader:
        print('shuffled', sample['key'])

from datadings.reader import Cycler
with Cycler(MsgpackReader('MIT1003.msgpack')) as reader:
    for i, sample in enumerate(reader):
        print('cycled', sample['key'])
        if i == 400:
            break

from datadings.reader import QuasiShuffler
with QuasiShuffler(MsgpackReader('MIT1003.msgpack'), seed=3) as reader:
    for sample in reader:
        print('quasi', sample['key'])
"""

# "PyTorch integration": the Compose / rng example
TORCH_COMPOSE = """
import random
from datadings.torch import Compose
from datadings.torch import Dataset
from datadings.reader import ListReader


def add(v, number):
    return v + number


def sub(x, value):
    return x - value


def rng(_):
    return {
        'number': random.randrange(1, 10),
        'value': random.randrange(1, 10),
    }


samples = [{'a': 0, 'b': 0, 'c': 0} for _ in range(10)]
reader = ListReader(samples)
transforms = {
    'a': Compose(add),
    'b': Compose(sub),
    'c': Compose((add, sub)),
}
dataset = Dataset(reader, transforms=transforms, rng=rng)
for i in range(len(dataset)):
    print(dataset[i])
"""

# "PyTorch integration": DataLoader example (path, batch size, workers and epochs made small)
TORCH_LOADER = """
from datadings.reader import MsgpackReader
from datadings.torch import IterableDataset
from datadings.torch import CompressedToPIL
from datadings.torch import dict2tuple
from datadings.torch import Compose

from tqdm import tqdm
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import RandomHorizontalFlip


def main():
    path = 'train.msgpack'
    batch_size = 4
    transforms = {'image': Compose(
        CompressedToPIL(),
        RandomResizedCrop((24, 24)),
        RandomHorizontalFlip(),
        ToTensor(),
    )}
    reader = MsgpackReader(path)
    ds = IterableDataset(
        reader,
        transforms=transforms,
        batch_size=batch_size,
    )
    train = DataLoader(
        dataset=ds,
        batch_size=batch_size,
        num_workers=2,
        persistent_workers=True,
    )
    for epoch in range(2):
        print('Epoch', epoch)
        for x, y in dict2tuple(tqdm(train, disable=True)):
            print(tuple(x.shape), y.tolist())


if __name__ == "example":
    main()
"""

# "Creating a custom dataset": the write module the guide assembles (FILES, make_parser,
# argument_threads, prepare_indir, yield_threaded, a thread pool, FileWriter with total and
# overwrite), with its relative imports written as absolute ones and the sample type from
# sets.types
GUIDE_WRITER = """
import os.path as pt
from multiprocessing.pool import ThreadPool

from datadings.writer import FileWriter
from datadings.tools import yield_threaded
from datadings.sets.types import ImageClassificationData

FILES = {
    'train': {'path': 'trainSet.zip', 'url': None, 'md5': TRAIN_MD5},
    'test': {'path': 'testSet.zip', 'url': None, 'md5': TEST_MD5},
}


def yield_samples(stuff):
    import zipfile
    with zipfile.ZipFile(stuff) as z:
        for i, name in enumerate(sorted(z.namelist())):
            yield ImageClassificationData(name, z.read(name), i % 3)


def create_sample(sample):
    return dict(sample, image=sample['image'][::-1])


def write_set(split, stuff, outdir, args):
    gen = yield_threaded(yield_samples(stuff))
    outfile = pt.join(outdir, split + '.msgpack')
    writer = FileWriter(outfile, total=5, overwrite=args.no_confirm)
    pool = ThreadPool(args.threads)
    with writer:
        for sample in pool.imap(create_sample, gen):
            writer.write(sample)
    pool.close()


def write_sets(files, outdir, args):
    for split in ('train', 'test'):
        try:
            write_set(split, files[split]['path'], outdir, args)
        except FileExistsError:
            continue
        except KeyboardInterrupt:
            break


def main():
    from datadings.tools.argparse import make_parser
    from datadings.tools.argparse import argument_threads
    from datadings.tools import prepare_indir
    parser = make_parser(__doc__)
    argument_threads(parser)
    args = parser.parse_args(ARGV)
    outdir = args.outdir or args.indir
    files = prepare_indir(FILES, args)
    write_sets(files, outdir, args)

main()
"""
