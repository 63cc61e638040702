"""The ex3 report's code, as the notebook imports it (`import helpers as h`).

The models are nn.Modules in their own modules of the package ex3lib:

- `Encoder`, `Decoder` and `Autoencoder` (ex3lib/autoencoder.py): images [N, 1, 32, 32] to codes [N, d] and back;
- `Generator`, `Discriminator` and `LatentGAN` (ex3lib/gan.py): latent codes from noise (and a digit);
- `EvalClassifier` (ex3lib/classifier.py) and `FewLabelClassifier` (ex3lib/transfer.py).

Everything else the notebook calls, in the order it uses it:

| module | holds |
|---|---|
| settings | the mode (EX3_SMOKE), folders, and the report's recipe: `RECIPE`, one frozen `Recipe` value |
| runtime | the one device and training precision, seeds, Adam and batching |
| cache | checkpoints named by config, precision and the source of the training code |
| data | MNIST as tensors, the validation split, the pinned download |
| autoencoder | the autoencoder, its training, reconstruction metrics, PCA, the report's configs |
| metrics | latent correlation, paired intervals, Frechet distance, precision/recall |
| classifier | fitting classifiers, accuracy, the evaluation classifier |
| transfer | section 3: few-label arms and cluster-then-label |
| gan | latent GANs, their configs, the density baselines, `generate` |
| generation | interpolation, inversion, per-digit scores of generators |
| timing | ms per training step, the run's clock |
| tables | metrics.json and Markdown tables |
| report | what each section computes, as rows |
| chosen | how the stored studies (studies/) chose the report's settings, their curves and selections |
| figures | one function per kind of figure |
"""

from ex3lib.autoencoder import Autoencoder, Decoder, Encoder  # noqa: F401  (the model code)
from ex3lib.gan import Discriminator, Generator, LatentGAN  # noqa: F401
from ex3lib.settings import *  # noqa: F401,F403
from ex3lib.runtime import *  # noqa: F401,F403
from ex3lib.cache import *  # noqa: F401,F403
from ex3lib.data import *  # noqa: F401,F403
from ex3lib.autoencoder import *  # noqa: F401,F403
from ex3lib.metrics import *  # noqa: F401,F403
from ex3lib.classifier import *  # noqa: F401,F403
from ex3lib.transfer import *  # noqa: F401,F403
from ex3lib.gan import *  # noqa: F401,F403
from ex3lib.generation import *  # noqa: F401,F403
from ex3lib.timing import *  # noqa: F401,F403
from ex3lib.tables import *  # noqa: F401,F403
from ex3lib.report import *  # noqa: F401,F403
from ex3lib.figures import *  # noqa: F401,F403
from ex3lib.chosen import autoencoder_lengths, how_chosen, transfer_selection  # noqa: F401
