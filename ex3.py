# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 3: autoencoders and generative models in a latent space (MNIST)
#
# This report studies what a small convolutional autoencoder learns about MNIST and what its latent
# space can be used for, in five experiments:
#
# 1. **Autoencoder.** A convolutional encoder and decoder with a small latent code: six designs of the
#    layers between the convolutional trunk and the code, and a sweep of the latent size $d$ against PCA.
# 2. **Decorrelation.** How strongly the latent coordinates correlate, as a function of $d$.
# 3. **Transfer learning.** The frozen pretrained encoder with a small classifier trained on 10 to 1,000
#    labels (alone, with self-training, and as cluster-then-label on its codes), against fine-tuning
#    the whole network and training it from scratch, each arm at settings chosen on held-out images.
# 4. **Latent GAN.** A GAN that generates latent codes, which the pretrained decoder turns into images,
#    against density baselines; then interpolation in the GAN's noise space against interpolation in
#    the autoencoder's latent space.
# 5. **Digit-conditional generator.** One generator that takes the digit to draw as an input.
#
# Two theory questions follow. Every result in the report comes from this run of the notebook; the
# model code is in `helpers.py`. Images are the 28x28 MNIST digits zero-padded to 32x32, with pixels in
# [0, 1].

# %%
# The table of headline results is filled in by the last cell of the notebook.
from IPython.display import Markdown, display
summary_display = display(Markdown("*Headline results: filled in when the notebook finishes.*"), display_id=True)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import helpers as h

h.figure_style()
h.reset_metrics()
clock = h.RunClock()  # times each section, for the appendix

# %% [markdown]
# ## Data
#
# `load_mnist` returns the 60,000 training and 10,000 test digits as in-memory tensors, checked against
# pinned checksums. The autoencoders train on the first 55,000 training images; the last 5,000 are
# held out. **Every setting that this report chose rather than fixed in advance was chosen on those
# 5,000 held-out images**, by a validation search in the repository (`tools/validate.py`) whose models
# train on the first 55,000 images only and which never loads a test image. The test images are used
# once, for the reported numbers.

# %% tags=["nbval-check-output"]
train_x, train_y = h.load_mnist(train=True)
test_x, test_y = h.load_mnist(train=False)
print(f"{len(train_x):,} training and {len(test_x):,} test images of {tuple(train_x.shape[1:])} pixels in [0, 1]")
print("test digits per class:", test_y.bincount().tolist())

# %% [markdown]
# ## 1. A convolutional autoencoder
#
# **Architecture.** The encoder's trunk has three stride-2 3x3 convolutions (16, 32 and 64 channels),
# each followed by BatchNorm and ReLU, which take the image from 32x32 to a 4x4x64 map. The decoder
# mirrors it with stride-2 4x4 transposed convolutions and ends in a sigmoid. Six designs connect the
# 4x4x64 map to the $d$-dimensional code, each mirrored in the decoder:
#
# * **conv**: one more stride-2 3x3 convolution with ReLU to a 2x2x64 map, then a 2x2 convolution with
#   $d$ output channels. That last kernel covers the whole 2x2 map, so it is a dense layer from 256
#   inputs to $d$; what sets the design apart is that the hidden layer before it is a convolution
#   with shared weights instead of a fully connected layer.
# * **conv_wide**: the same with a 2x2x160 map, which gives it as many parameters as fc128.
# * **linear**: flatten, then one linear map to $d$.
# * **fc128**, **fc512**: flatten, one hidden fully connected layer of 128 or 512 ReLU units, then a
#   linear map to $d$.
# * **fc2x512**: two hidden fully connected layers of 512 units.
#
# No bottleneck layer has a BatchNorm, so the designs differ only in the layers between the trunk and
# the code; conv_wide and fc128 differ only in whether their hidden layer is a convolution or fully
# connected.
#
# **Training.** One recipe for every autoencoder: pixel-wise binary cross-entropy on the decoder's
# logits; Adam, batch 128, 10 epochs over the 55,000 training images, one-cycle learning rate (peak
# $4\cdot10^{-3}$ after 15% of the steps, cosine decay to zero). The reported metric is the MSE per
# pixel on the 28x28 digit area; its value on the 5,000 held-out training images after every epoch
# gives the learning curves. A learning curve under an annealed rate flattens whether or not the
# model has converged, so the check of the plateau is a longer run: the $d = 10$ and $d = 64$ models
# (seed 0) are trained again with 20 epochs, the same recipe stretched over twice the steps.

# %% [markdown]
# ### 1a. Learning curves

# %%
s1 = h.train_section1(train_x)
scores = h.reconstruction_scores(s1, test_x)
h.plot_learning_curves(s1)
plt.show()

# %% [markdown]
# ### 1b. The layers between the trunk and the code ($d = 10$)

# %%
designs = h.design_rows(s1, scores)
h.record_rows(designs, h.DESIGN_METRICS)
display(h.table(designs, {"design": "design", "parameters": "parameters", "bottleneck parameters": "between trunk and code",
                          "mse": "test MSE, seed 0", "mse_seed1": "test MSE, seed 1", "psnr": "PSNR dB, seed 0"},
                {"parameters": ",", "bottleneck parameters": ",", "mse": ".4g", "mse_seed1": ".4g", "psnr": ".2f"}))

# %% [markdown]
# **What the table shows.** A single linear map is not enough: the single linear map from the
# flattened map to the code is the worst design. At matched parameter count the convolutional
# bottleneck conv_wide has a lower test error than fc128 (one seed each; with the BatchNorm noted
# above as a second difference). Wide hidden layers pay off: fc2x512 and fc512 have the lowest test error of the six
# designs, in both of their seeds, with several times the parameters of the other designs. Of these
# two, fc2x512 has the lower test error in both seeds, seed by seed, by more than the standard deviation
# of fc512's three seeds at $d = 10$ (sweep table below). The sweep and sections 2 to 5 use **fc512**,
# the second-best design at two thirds of fc2x512's size. The other four designs have one seed each;
# their differences from the best two are larger than the seed standard deviation of fc512.

# %% [markdown]
# ### 1c. Latent size against PCA
#
# PCA with $d$ components, the linear code of size $d$ with the lowest squared error on the data it is
# fitted to, is fitted on the autoencoders' 55,000 training digits (28x28 area) and scored on the same
# test pixels.

# %%
pca = h.pca_reconstructions(train_x[:h.AE_TRAIN_SIZE], test_x, h.SWEEP_DS)
sweep = h.sweep_rows(s1, scores, pca, test_x)
h.record_rows(sweep, h.SWEEP_METRICS)
h.record_metrics({"ae.epochs": h.ae_config().epochs, "ae.seeds": len(h.SEEDS)})
display(h.table(sweep, {"d": "d", "mse": "AE, seed 0", "mse_seeds": "AE, mean ± std of seeds", "pca_mse": "PCA",
                        "psnr": "AE PSNR dB", "pca_psnr": "PCA PSNR dB"},
                {"mse": ".4g", "mse_seeds": h.mean_std("mse_seeds", ".4g"), "pca_mse": ".4g", "psnr": ".2f",
                 "pca_psnr": ".2f"}))
h.plot_sweep(sweep)
plt.show()

# %%
long = h.long_schedule_rows(s1, scores)
h.record_rows(long, h.LONG_SCHEDULE_METRICS)
display(h.table(long, {"d": "d", "epochs": "epochs", "mse": "test MSE", "long_epochs": "epochs (long)",
                       "long_mse": "test MSE (long)", "rel_change": "relative change"},
                {"mse": ".4g", "long_mse": ".4g", "rel_change": "+.1%"}))

# %% [markdown]
# **What the numbers show.** The test error falls at every step of $d$, and the autoencoder beats
# PCA at every $d$ (table and figure): the nonlinear code of size $d$ reconstructs better than the best linear code of
# the same size. Three seeds at $d = 4$, 10 and 64 show that the spread between seeds is a few percent
# of the error, far less than the gap between neighbouring sizes, so there the ordering is not seed
# noise. The learning curves flatten in the last epochs, as they must while the learning rate anneals
# to zero, so they do not show that a longer schedule would gain nothing; that is not tested here. The
# largest last-epoch gain is at $d = 64$ (seed 0).

# %%
rows = {"test digits": test_x[:12], **{f"d = {d}": h.reconstruct(s1.model(d), test_x[:12]) for d in h.SWEEP_DS}}
h.plot_image_rows(rows, "The first 12 test digits and their reconstructions (fc512, seed 0)", "reconstructions")
plt.show()
clock.section(1)

# %% [markdown]
# **The reconstructions.** At $d = 2$ several digits come back as another digit: both 4s (columns 5
# and 7) are drawn as 9s, the 5 in column 9 as an 8 and the 9 in column 10 as a 4. At $d = 4$ the 5 in
# column 9 becomes a 6.
# From $d = 8$ on, all twelve digits keep their identity, and larger codes add detail rather than
# identity: stroke thickness, the exact slant, and the shape of unusual digits such as the open 9 in
# column 8 get closer to the original as $d$ grows.

# %% [markdown]
# ## 2. How correlated are the latent coordinates?
#
# **Question.** Does a larger latent space make the code coordinates more redundant?
#
# **Codes.** The 10,000 test images' codes from the section-1 sweep: seed 0 at every $d$, seeds 0, 1
# and 2 at $d = 4, 10, 64$.
#
# **Summary number.** The *mean absolute off-diagonal Pearson correlation*
# $\overline{|r|} = \frac{1}{d(d-1)}\sum_{i\neq j}|R_{ij}|$: 0 for uncorrelated coordinates, 1 when
# every coordinate is a linear function of every other, blind to each coordinate's scale (which the
# decoder can absorb); its 95% interval comes from 200 bootstrap resamples of the test images.
#
# **What a mean of pairs can hide** is redundancy spread over many coordinates, which the spectrum of
# the correlation matrix $R$ shows: its eigenvalues as shares of $d$ (all $1/d$ for uncorrelated
# coordinates), its smallest eigenvalue (near 0 when one direction of the code is almost a linear
# combination of the others), and the Gaussian total correlation per coordinate,
# $\mathrm{TC}/d = -\frac{1}{2d}\log\det R = -\frac{1}{2d}\sum_i\log\lambda_i$ (0 for uncorrelated
# coordinates), which is dominated by the smallest eigenvalues. A summary such as the participation
# ratio $(\sum_i\lambda_i)^2/\sum_i\lambda_i^2$ adds nothing to the pairwise numbers: for a correlation
# matrix it equals $d/(1+(d-1)\,\overline{r^2})$ exactly, with $\overline{r^2}$ the mean squared
# off-diagonal correlation, so it is not used.
#
# **References.** PCA codes of the same size (uncorrelated by construction on the training set), and
# the same encoder architecture untrained (random weights): the correlation the architecture alone
# produces.

# %%
codes = {key: h.encode(s1.trained[config][0].encoder, test_x) for key, config in s1.sweep.items()}
untrained = h.untrained_codes(test_x)
corr = h.correlation_rows(codes, untrained, {d: c for d, (_, c) in pca.items()})
h.record_rows(corr, h.CORRELATION_METRICS)
display(h.table(corr, {"d": "d", "r": "mean abs r, seed 0", "low": "95% interval", "r_seeds": "seeds 0, 1, 2",
                       "untrained_r": "untrained", "pca_r": "PCA"},
                {"r": ".3f", "low": lambda r: f"[{r['low']:.3f}, {r['high']:.3f}]", "r_seeds": ".3f",
                 "untrained_r": ".3f", "pca_r": ".3f"}))
h.plot_correlation(corr)
plt.show()

# %%
seeds_or_first = lambda key, spec: lambda r: h.format_cell(r[f"{key}_seeds"] or r[key], spec)
display(h.table(corr, {"d": "d", "tc": "TC per coordinate (seeds)", "untrained_tc": "TC, untrained",
                       "eig_min": "smallest eigenvalue (seeds)", "untrained_eig_min": "smallest eigenvalue, untrained"},
                {"tc": seeds_or_first("tc", ".3f"), "untrained_tc": ".3f", "eig_min": seeds_or_first("eig_min", ".4f"),
                 "untrained_eig_min": ".4f"}))
h.plot_spectrum(codes, untrained)
plt.show()
clock.section(2)

# %% [markdown]
# **What the numbers show.**
#
# * **Mean absolute correlation.** From $d = 4$ on, the mean absolute correlation of the trained codes
#   stays between 0.1 and 0.25 in every seed, with no trend in $d$: the differences between sizes are
#   of the size of the differences between seeds at the same size (seeds column). From $d = 4$ on, the
#   untrained encoder sits at a similar level, and PCA codes stay near zero at every $d$. At $d = 2$
#   the trained code is more correlated than the untrained one.
# * **Effective rank.** As a share of $d$, the effective rank is lower at $d = 64$ than at $d = 4$ in
#   all three seeds, and the untrained encoder's falls the same way. This adds nothing to the pairwise
#   mean: for a correlation matrix the participation ratio is exactly $d/(1+(d-1)\,\overline{r^2})$,
#   with $\overline{r^2}$ the mean squared off-diagonal correlation, so at a constant pairwise
#   correlation it must fall as a share of $d$.
# * **Near-collinear directions at large $d$.** In seed 0 the Gaussian total
#   correlation per coordinate grows with $d$, and at $d = 64$ it is more than twice the untrained
#   encoder's, while the smallest eigenvalue falls to nearly zero: training makes some direction
#   of the 64-dimensional code almost a linear combination of the others, a redundancy that the
#   untrained encoder does not have (its smallest eigenvalue stays many times larger). For $4 \le d \le 32$ the
#   trained and untrained codes are of similar size by all three measures.
#
# **Why.** Nothing in the reconstruction loss rewards decorrelated coordinates (the decoder's first
# layer can undo any invertible linear mixing of the code), so for $d \ge 4$ training ends near the pairwise level that
# the architecture starts with; with more coordinates than reconstruction needs, nothing stops it from
# spending some on near-copies of combinations of the others, as at $d = 64$ (one seed).

# %% [markdown]
# ## 3. Transfer learning from tens of labels
#
# **Setup.** The pretrained encoder is the $d=10$ fc512 model of section 1 (seed 0), as in sections 4
# and 5. The classifier is this encoder, a fixed standardisation of its 10 outputs (over the 60,000
# training images) and an MLP head $10\to128\to10$. Six ways ("arms") to use a few labels:
#
# * **frozen**: the encoder is fixed, and only the head learns, on the codes of the labelled images;
# * **selftrain**: the same, then five rounds of pseudo-labelling (Lee 2013) of the 60,000 training
#   codes *without their labels*: each round keeps the head's most confident 10%, 30%, 50%, 70% and 90%
#   of the pool (equal per predicted class) and trains a fresh head on them and the labelled codes
#   (restarts as in Cascante-Bonilla et al. 2021);
# * **cluster**: cluster-then-label on the frozen codes (the N2D recipe of McConville et al. 2020):
#   UMAP (McInnes et al. 2018) projects the standardised codes of the 60,000 training images, without
#   labels, to a few dimensions; a full-covariance Gaussian mixture of 10 components clusters the
#   projection; each cluster is named after the digit whose labelled images give it the most
#   responsibility, and a test image gets the name of its cluster (its code is only transformed, never
#   fitted);
# * **finetune**: the encoder starts from the pretrained weights and learns together with the head, at
#   its own (smaller) learning rate;
# * **whole**: the exercise's plain reading, the pretrained network trained end to end on the few labels
#   at the head's learning rate, BatchNorm statistics learning too;
# * **scratch**: the same network with a randomly initialised encoder, all trained together.
#
# The exercise's comparison is *frozen* against *finetune* (and *whole*); *selftrain* and *cluster* also
# use the unlabelled images.
#
# **Protocol.** Labelled subsets are class-balanced draws from the training images, 10 draws for every
# number of labels; every arm of a draw sees the same images, so arms are compared draw by draw (a
# paired comparison). Every arm uses Adam with weight decay $10^{-4}$ and batches of up to 128 labelled
# images, and the same precision policy for its matrix products. **Each arm's settings were chosen for
# that arm on the 5,000 held-out training images** (models on the other 55,000; 3 draws at each of 10,
# 100 and 1,000 labels, drawn apart from the report's): from a small grid (head learning rate; for
# fine-tuning, the encoder's learning rate $10^{-5}$ to $10^{-3}$, BatchNorm statistics frozen or
# learning, random shifts or none; for cluster, the projection's size, neighbours and components), the
# setting with the highest mean validation accuracy, and as its length the fewest training steps
# within half a point of that setting's best. Self-training was kept because it beat the chosen frozen
# head on the held-out images. The first table gives the chosen settings, the figure their validation
# curves.

# %%
report_ae = s1.model()
selection = h.selection_rows()
h.record_rows(selection, h.SELECTION_METRICS)
display(h.table(selection, {"arm": "arm", "setting": "chosen setting", "validation": "mean validation accuracy"},
                {"validation": ".1%"}))
h.plot_validation_curves(h.read_validation())
plt.show()

# %%
runs = h.transfer_experiment(report_ae.config, report_ae.encoder.state_dict(), train_x, train_y, test_x, test_y,
                             h.transfer_draws())
transfer = h.transfer_summary(runs)
h.record_rows(transfer, h.TRANSFER_METRICS)
display(Markdown(f"Test accuracy, mean ± standard deviation over {transfer[0]['draws']} draws, and (in brackets) "
                 "the mean accuracy on the labelled training images:"))
display(h.table(transfer, {"labels": "labels", **{arm: arm for arm in h.ARMS}}, {arm: h.accuracy_cell(arm) for arm in h.ARMS}))

# %%
paired = h.paired_rows(transfer)
h.record_rows(paired, h.PAIRED_METRICS)
display(Markdown("Paired differences of test accuracy over the draws: mean [95% Student t interval], and the "
                 "better arm where the interval excludes zero:"))
display(h.table(paired, {"labels": "labels", **{key: f"{a} − {b}" for key, (a, b) in h.TRANSFER_PAIRS.items()}},
                {key: h.interval_cell(key) for key in h.TRANSFER_PAIRS}))
h.plot_transfer(transfer)
plt.show()

# %%
control = h.encoder_lr0_control(report_ae.config, report_ae.encoder.state_dict(), train_x, train_y, test_x, test_y)
h.record_metrics({f"transfer.control.encoder_lr0.{key}": value for key, value in control.items()})
display(h.table([control], {"frozen": "frozen, 10 labels, first draw", "finetune_lr0": "fine-tuned at encoder lr 0",
                            "max_abs_diff": "difference", "max_logit_diff": "largest logit difference"},
                {"frozen": ".2%", "finetune_lr0": ".2%", "max_abs_diff": ".2%", "max_logit_diff": ".1e"}))
clock.section(3)

# %% [markdown]
# **What the numbers show.**
#
# * **Frozen against fine-tuned# %% [markdown]
# **What the numbers show.**
#
# * **Frozen against fine-tuned (the exercise's comparison).** The frozen encoder is more accurate
#   than fine-tuning at 10, 20, 50 and 100 labels: the paired intervals lie above zero (the figure shows the means). At 1,000 labels
#   fine-tuning is the more accurate. Under this one recipe, that is; each arm at its own best settings
#   was not tried.
# * **Overfitting, shown by the training accuracy.** Up to 50 labels every arm classifies its
#   labelled images perfectly or nearly so, while its test accuracy is far lower: the gap between the
#   accuracy in brackets and the test accuracy is the overfitting. The learning curves of the fine-tuned
#   arm (first draw, scored on the first 2,000 test images, so not the table's mean over draws) show how
#   it happens: the labelled images are fitted within the first 100 steps, and the test accuracy then
#   stays flat: fine-tuning does not destroy what pretraining gave, but the encoder's extra freedom goes
#   into fitting the few images. With 1,000 labels that freedom pays: the training and test accuracies
#   come closer, and fine-tuning is the better arm.
# * **Self-training** is more accurate than the frozen head at 10 to 100 labels, by a margin that
#   shrinks as the labels grow, and slightly less accurate at 1,000.
# * **From scratch** is the least accurate arm at every number of labels: under this recipe, tens of labels
#   do not train a convolutional encoder from scratch.
#
# **Why.** With a handful of labels, the frozen code is the strongest prior available: the autoencoder
# has already placed images of the same digit near each other, so a small head only has to draw
# boundaries between groups of codes. For the three arms built on the pretrained encoder, the spread
# over draws at 10 labels is several times that at 100: with one image per class, the draw decides
# much of the result.

# %% [markdown]
# ## 4. A GAN in the autoencoder's latent space
#
# ### An evaluation classifier, and the floors of the Fréchet distance
# A small CNN classifier (three stride-2 convolutions, a 128-unit feature layer; recipe in the appendix)
# is trained on the first 55,000 training images only; its number of epochs was chosen by its accuracy
# on the 5,000 held-out ones. Its 128 penultimate features define a Fréchet distance between two sets
# of images (**FD**: the formula of the FID of Heusel et al. 2017, but in this classifier's features
# instead of Inception's, so its values are on this report's own scale and not comparable with
# published FIDs), and its predictions give the label of a generated digit. Every set of images is
# compared with the 10,000 test images, and every sampler below draws 5,000 samples, as many as the
# references that set the scale:
#
# * the FD of the 5,000 held-out real training images, which the classifier never saw, against the
#   test set: the **floor**, the distance between two independent samples of real digits;
# * the FD of the autoencoder's reconstructions of the same 5,000 images: every sample here is decoded
#   by this decoder, so this is about the best any sampler in its latent space can do.

# %%
clf, _ = h.evaluation_classifier(train_x, train_y)
held_x, held_y = h.validation_data("validation")  # real digits the classifier never saw
test_feats, test_probs = h.classify(clf, test_x)
held_feats, held_probs = h.classify(clf, held_x)
references = {"accuracy": float((test_probs.argmax(1) == test_y.numpy()).mean()), "images": len(held_x),
              "floor": h.frechet_distance(held_feats, test_feats),
              "recon": h.frechet_distance(h.classify(clf, h.reconstruct(report_ae, held_x))[0], test_feats)}
h.record_metrics({"classifier.test_accuracy": references["accuracy"], "fid.real_floor": references["floor"],
                  "fid.recon": references["recon"], "fid.reference_images": references["images"]})
display(h.table([references], {"accuracy": "evaluation classifier, test accuracy", "images": "held-out images",
                                "floor": "FD floor: held-out real images", "recon": "FD: their reconstructions"},
                {"accuracy": ".2%", "images": ",", "floor": ".2f", "recon": ".2f"}))

# %% [markdown]
# ### The latent GAN
#
# **Recipe.**
#
# * **Generator** and **discriminator** are MLPs (3 hidden layers of 256 units, LeakyReLU 0.2), from
#   noise to the 10-dimensional code and from a code to a real/fake logit, on codes **standardised**
#   with the real training codes' statistics; generated codes are decoded by the frozen decoder.
# * The loss is the **non-saturating** GAN loss with an **R1 gradient penalty** on real codes
#   ($\gamma=10$; Mescheder et al. 2018). Adam with $\beta=(0.5, 0.9)$, batch 256; the generator's
#   learning rate is $10^{-3}$, the discriminator's twice that (the two time-scale rule of Heusel et al.
#   2017), both decaying linearly to 0. The R1 penalty is computed on every fourth discriminator step
#   with four times the weight (lazy regularisation; Karras et al. 2020).
# * **Gaussian noise:** $k=8$, and $k=2$ (fewer dimensions than the code has) with one seed.
# * **Mixture prior:** the noise is a mixture component $c$ (drawn with the mixture's weights) and
#   $z\sim N(0, I_{10})$. The generator computes $b=\mu_c+L_c z$ with the means and Cholesky factors of
#   a 10-component full-covariance Gaussian mixture fitted to the codes by EM, and returns
#   $b+\mathrm{MLP}(b, c)$, the MLP's last layer starting at zero, so before training it *is* that
#   mixture. Adversarial training (constant learning rate $3\cdot10^{-4}$, 300 discriminator-only
#   steps first) moves the means, scale matrices and MLP; samples come from a moving average of its
#   weights (decay 0.999; Yazici et al. 2019).
# * **The same recipe for both priors:** the Gaussian-noise GAN also under the mixture-prior GAN's
#   recipe (warm-up, steps, constant learning rate, moving average), so that one row differs from the
#   mixture-prior GAN in the prior and the generator's form only.
#
# **How the settings were chosen.** Each GAN's number of steps is the fewest, among four lengths,
# whose FD against the 5,000 held-out images came within 10% of the lowest (GANs and classifier trained
# on the other 55,000 images): 6,000 steps for the Gaussian-noise GAN, whose FD still fell at that
# longest length, and 2,000 for the mixture-prior GAN.
#
# **Baselines.** One full-covariance Gaussian fitted to the codes, and full-covariance Gaussian
# mixtures (the ex-post density estimator of Ghosh et al. 2020), sampled through their Cholesky
# factors: with 10 components, the mixture-prior GAN's starting point, and with 100 components, the
# size with the highest log-likelihood of the held-out codes among 10, 20, 50 and 100 (the largest size
# tried).
#
# **Scores.** Besides the FD: **precision** and **recall** of $k$-nearest-neighbour manifolds in the
# classifier's features ($k = 5$; Kynkäänniemi et al. 2019), the share of samples that fall inside
# the test images' manifold (quality) and the share of test images that fall inside the samples'
# manifold (coverage of the real variety), and **coverage**, the robust variant of recall (Naeem et
# al. 2020), computed with the `prdc` package. **Seeds:** the Gaussian-noise GANs ($k=8$), the
# mixture-prior GAN and both mixtures run with seeds 0, 1 and 2; the mixture-prior GAN of seed $s$
# starts from the 10-component mixture of seed $s$ (the seed sets EM's start). **The FD's own noise:**
# one fixed sampler (the mixture-prior GAN of seed 0) drawn five times, 5,000 fresh samples each.

# %%
train_codes, test_codes = h.encode(report_ae.encoder, train_x), h.encode(report_ae.encoder, test_x)
gans = h.train_section4_gans(report_ae.config, train_codes)
samplers = h.section4_samplers(gans, train_codes)
generated = h.sampler_rows(samplers, report_ae.decoder, clf, test_feats)
h.record_rows(generated, h.SAMPLER_METRICS)
h.record_metrics(h.sampler_comparisons(generated))
draws = h.fd_sample_noise(samplers["gmm_prior", 0], report_ae.decoder, clf, test_feats)
h.record_metrics({"gan.fd.sample_noise_std": float(np.std(draws, ddof=1)), "gan.fd.sample_noise_draws": len(draws)})

# %%
floors = [{"sampler": "held-out real images (floor)", "fd_seeds": [references["floor"]]},
          {"sampler": "their reconstructions (decoder ceiling)", "fd_seeds": [references["recon"]]},
          {"sampler": f"mixture-prior GAN, seed 0: {len(draws)} sample draws", "seeds": 1, "fd_seeds": draws}]
display(h.table(floors + generated, {"sampler": "sampler", "seeds": "seeds", "fd_mean": "FD, mean ± std",
                                     "fd_seeds": "FD per seed (or draw)", "precision": "precision", "recall": "recall",
                                     "coverage": "coverage"},
                {"fd_mean": h.mean_std("fd_seeds", ".2f"), "fd_seeds": ".2f", "precision": ".3f", "recall": ".3f",
                 "coverage": ".3f"}))

# %%
for kind, title in (("gmm_prior", "the mixture prior"), ("k8", "Gaussian noise (k=8)")):
    h.plot_digit_grid(h.decode(report_ae.decoder, h.sample_codes(gans[kind, 0].generator, 64, seed=7)),
                      f"64 samples of the latent GAN with {title}, seed 0, decoded",
                      "gan_samples_gmm_prior" if kind == "gmm_prior" else "gan_samples")
    plt.show()

# %% [markdown]
# **What the numbers show.**
#
# * **The mixture-prior GAN** has a lower FD than the 10-component mixture it starts from in each of
#   the three seeds: adversarial refinement improved on the mixture every time.
# * **With Gaussian noise** ($k = 8$) the latent GAN is worse than the mixture in every seed. With
#   $k = 2$ it is much worse: two noise dimensions cannot cover a 10-dimensional distribution. A single
#   Gaussian is the worst sampler.
# * **The sample grids** show mostly clean digits of every class from both GANs; the Gaussian-noise
#   GAN's grid also holds a few malformed or ambiguous shapes (a blotted 8, a 4 that could be a 9),
#   which its higher FD in every seed reflects.
#
# **A possible reason, not isolated here.** A generator maps one Gaussian through a continuous
# network; if the codes of different digits lie in separate regions, it must also put some mass between
# them, where the decoder draws ambiguous shapes, while a mixture places separate modes directly. The
# two GANs, however, also differ in their recipe (moving average, learning rate, warm-up, number of
# steps), so the table does not show how much of the gap the prior alone explains.

# %% [markdown]
# ### Interpolation: in the GAN's noise space against in the autoencoder's latent space
#
# Every kind of path joins the **same** 200 pairs of real test images of different digits, 10 steps
# from one image to the other:
#
# * **AE line**: the straight line between the two images' codes, $(1-a)L_1 + aL_2$, decoded.
# * **GAN line** and **GAN slerp**, through the Gaussian-noise GAN ($k=8$, seed 0). The samplers with
#   the lowest FD, the mixtures and the mixture-prior GAN, draw a discrete component first, so between
#   two codes of different components their noise space has no continuous path; the Gaussian-noise GAN
#   is the best sampler that has one. Each image's code is first *inverted* (Adam finds
#   the noise vector whose generated code is closest, best of 8 starts of 300 steps), and the two noise
#   vectors are joined by a straight line or by a great circle (slerp; White 2016), which keeps the noise
#   at the norms the generator was trained on. Each point is decoded as $\mathrm{Dec}(G(n))$.
#
# Realism of the 8 inner images of every path (1,600 a kind): the classifier's mean confidence (max
# softmax) and the FD against the test set, beside 1,600 of the held-out real images as the floor at
# this sample size. The strips show the real end images in their first and last columns. Smoothness: the largest
# step of a path in the classifier's feature space as a share of its length (9 equal steps score 0.11),
# the number of label changes (a good path changes once), and the share of paths whose inner images
# show a digit that neither end shows.

# %%
first, second = h.interpolation_pairs(test_y)
paths, inversion_error = h.interpolation_paths(report_ae.decoder, gans["k8", 0].generator,
                                               test_codes[first], test_codes[second])
h.record_metrics({"interp.inversion.code_mse": inversion_error.mean(), "interp.pairs": len(first)})
print(f"generator inversion: mean squared error {inversion_error.mean():.4f} per standardised coordinate "
      f"(the codes' own variance is 1); median {inversion_error.median():.4f}, worst {inversion_error.max():.4f}")
h.plot_image_rows(h.interpolation_strips(paths, test_x[first], test_x[second]),
                  "The same real test digits (first and last column) joined by three kinds of path", "interpolation_strips")
plt.show()

# %%
interp = h.interpolation_rows(paths, clf, test_feats, held_x[:len(first) * 8])
h.record_rows(interp[1:], h.INTERP_METRICS)
display(h.table(interp, {"path": "path", "FID": "FD", "confidence": "confidence", "max jump": "largest step / length",
                         "label changes": "label changes", "one change": "paths with one change",
                         "third digit": "paths through a third digit"},
                {"FID": ".2f", "confidence": ".3f", "max jump": ".3f", "label changes": ".2f", "one change": ".1%",
                 "third digit": ".1%"}))
clock.section(4)

# %% [markdown]
# **Which interpolation is better.** The two criteria disagree.
#
# * **Realism of the images on the path:** the paths through the GAN's noise space are better. Their
#   inner images have a lower FD and a higher classifier confidence than those of the straight line
#   in the autoencoder's space, and slerp has a lower FD than the straight line between the same noise
#   vectors. Midway between two codes the decoder draws faint blends of the two digits (pair 1 in the
#   strips), which the GAN's paths avoid.
# * **Smoothness of the path:** the straight line in the autoencoder's space is better. Its largest
#   single step is a smaller share of the path, more of its paths change label exactly once, and fewer
#   pass through a third digit. The GAN paths stay realistic by *jumping*, often through a digit that
#   neither end shows (pair 1 turns from a 1 into a 7 before becoming a 0).
#
# The GAN paths' ends are not exactly the real images: the inversion leaves a small error (printed
# above), visible at the ends of the GAN rows (pair 5). One GAN (seed 0), 200 pairs.

# %% [markdown]
# ## 5. A generator that takes the digit as input
#
# **Design.** One conditional GAN in the same latent space (Mirza & Osindero 2014), with the recipe of
# the Gaussian-noise GAN of section 4 and its own length (1,500 steps, chosen on the held-out images as
# in section 4):
#
# * the generator gets the noise ($k=8$) **concatenated with a one-hot vector of the requested digit**,
#   so the digit is fixed by the input and only its shape is random;
# * the discriminator is a **projection discriminator** (Miyato & Koyama 2018): its logit is
#   $w\cdot\phi(z) + e_y\cdot\phi(z)$, where $\phi$ is an MLP of the code and $e_y$ a learned embedding
#   of the digit, so it judges whether the code is a realistic code *for that digit*;
# * the real pairs are the training codes with their true labels;
# * an **auxiliary digit classifier** of codes (an MLP, trained for 1,000 steps on the real training
#   codes and labels, then frozen; not the evaluation classifier) adds a weight times its cross-entropy
#   for the requested digit to the generator's loss (AC-GAN's auxiliary classifier, Odena et al. 2017,
#   on the generator side only), to push samples away from the borders between digit clusters.
#
# **Ablation.** The weight 0.1 had the lowest mean per-digit FD on the held-out images among 0, 0.1,
# 0.3 and 1. The ablation trains the generator with weight 0.1 and with weight 0 at seeds 0, 1 and 2;
# the auxiliary classifier draws its batches from a random stream of its own, so the two arms of a seed
# start from the same weights and see the same batches and noise, and differ only in the term.
#
# **Scores**, on 1,000 samples per digit:
#
# * **recognised**: the share that the evaluation classifier reads as the requested digit;
# * **spread ratio**: the root mean squared distance of the recognised samples' classifier features to
#   their mean, divided by the same for the decoder's reconstructions of the real test images of that
#   digit that the classifier recognises. Samples read as another digit would count as variety; and
#   since every sample passes through the decoder, its reconstructions, not the raw test digits, are
#   the most varied a sampler can be. 1 means as varied as the decoder's own reconstructions;
# * the **FD**, **precision** and **recall** against the real test images of that digit;
# * **train on generated, test on real** (GAN-train, Shmelkov et al. 2018; the classification accuracy
#   score of Ravuri & Vinyals 2019): a classifier with the evaluation classifier's recipe trained only
#   on 20,000 generated digits (2,000 of each, seed 0's generator), tested on the real test set, beside
#   the same classifier trained on the decoder's reconstructions of 20,000 real training digits. A
#   generator that covered only part of each digit's variety would train a classifier that fails on
#   the rest, which the recognition rate cannot show.

# %%
cgans = {(w, s): h.latent_gan(h.gan_config(h.REPORT_NOISE_DIM, report_ae.config, conditional=True, aux_weight=w, seed=s),
                              train_codes, train_y)[0] for w in (h.CGAN_AUX_WEIGHT, 0.0) for s in h.CGAN_SEEDS}
recon_feats, recon_probs = h.classify(clf, h.reconstruct(report_ae, test_x))
per_digit = {key: h.conditional_scores(report_ae.decoder, g.generator, clf, test_feats, test_y, recon_feats, recon_probs)
             for key, g in cgans.items()}
conditional = h.conditional_rows(per_digit)
h.record_rows(conditional, h.CONDITIONAL_METRICS)
h.record_metrics({"cgan.ablation.seeds": len(h.CGAN_SEEDS)})
display(h.table(conditional, {"weight": "auxiliary weight", "accuracy_seeds": "recognised, per seed",
                              "worst_seeds": "worst digit, per seed", "spread_seeds": "spread ratio, per seed",
                              "fid_seeds": "mean per-digit FD, per seed", "precision": "precision", "recall": "recall"},
                {"accuracy_seeds": ".1%", "worst_seeds": ".1%", "spread_seeds": ".3f", "fid_seeds": ".2f",
                 "precision": ".3f", "recall": ".3f"}))

# %%
ablation = h.ablation_rows(conditional)
h.record_rows(ablation, h.ABLATION_METRICS)
display(h.table(ablation, {"statistic": "weight 0.1 minus weight 0", "diffs": "per seed", "agree": "seeds"},
                {"diffs": "+.3f"}))

# %%
ceiling = {"recon": h.recognised_share_per_digit(recon_probs, test_y),
           "aux": h.aux_classifier_accuracy(cgans[h.CGAN_AUX_WEIGHT, 0], test_codes, test_y)}
h.record_metrics({"cgan.recon_ceiling": ceiling["recon"], "cgan.aux_classifier_accuracy": ceiling["aux"]})
display(h.table([ceiling], {"recon": "reconstructions of real test digits recognised (mean over digits)",
                            "aux": "test codes the auxiliary classifier labels correctly (seed 0)"}, {"recon": ".1%", "aux": ".1%"}))
digits = h.digit_rows(per_digit)
h.record_rows(digits, h.DIGIT_METRICS)
display(h.table(digits, {"digit": "digit", "accuracy": "recognised", "spread": "spread ratio", "fid": "FD",
                         "precision": "precision", "recall": "recall", "accuracy0": "recognised, weight 0",
                         "spread0": "spread ratio, weight 0"},
                {"accuracy": ".1%", "spread": ".3f", "fid": ".2f", "precision": ".3f", "recall": ".3f",
                 "accuracy0": ".1%", "spread0": ".3f"}))

# %%
fake_x, fake_y = h.balanced_generated(report_ae.decoder, cgans[h.CGAN_AUX_WEIGHT, 0].generator, h.CAS_SIZE)
real_idx = h.balanced_subset(train_y, h.CAS_SIZE, seed=7)
cas = {"n": h.CAS_SIZE, "generated": h.train_on_generated_accuracy(fake_x, fake_y, test_x, test_y),
       "real": h.train_on_generated_accuracy(h.reconstruct(report_ae, train_x[real_idx]), train_y[real_idx], test_x, test_y)}
h.record_metrics({"cgan.cas": cas["generated"], "cgan.cas_real": cas["real"], "cgan.cas_size": cas["n"]})
display(h.table([cas], {"n": "training digits", "generated": "trained on generated, test accuracy",
                        "real": "trained on reconstructed real digits, test accuracy"},
                {"n": ",", "generated": ".2%", "real": ".2%"}))

# %%
h.plot_digit_grid(torch.cat([h.generate(10, digit=d, seed=0) for d in range(10)]),
                  "One row per requested digit, one column per noise vector (the same noise in each column)",
                  "cgan_same_noise", nrow=10)
plt.show()
h.plot_digit_grid(h.generate(64, digit=7, seed=1), "64 samples of the digit 7: the noise varies the shape", "cgan_seven", nrow=16)
plt.show()

# %%
picker, show_digit = h.digit_picker(report_ae.decoder, cgans[h.CGAN_AUX_WEIGHT, 0].generator)
display(picker)
clock.section(5)

# %% [markdown]
# **What the numbers and the figures show.**
#
# * **The noise carries the style, the input the digit.** In the grid above, each column uses the same
#   noise for all ten digits, and the style follows the column: the stroke thickness, width and slant
#   are shared down a column (bold, wide strokes in column 6, thin faint ones in column 8, a
#   back-slanted style in column 3) while the digit follows the row. Among the 64 sampled 7s, the slant
#   (upright to strongly right-leaning), the stroke thickness, the length of the top bar and the
#   curvature of the stem vary; a few have a crossbar on the stem or a hooked top, and a few are
#   malformed (a loop for a top bar). Every one reads as a 7. In Jupyter,
#   the control below the grids draws the samples of any digit and noise seed.
# * **The auxiliary term (ablation).** With weight 0.1 the requested digit is recognised more often,
#   for the average and for the worst digit, and the mean per-digit FD is lower than without it; the
#   price is variety: the spread ratio falls below that of the generator without the term, whose samples
#   (counted whether recognised or not) are as spread as real digits.
# * **Above the decoder's "ceiling".** The generator's samples are recognised more often than the
#   decoder's reconstructions of real test digits: some real digits decode into ambiguous shapes, and
#   the auxiliary term pushes generated codes to where its classifier is sure (second table, beside
#   that classifier's accuracy on test codes). The spread ratio below 1
#   measures the variety this costs, as a whole, not where in each class it is lost.
# * **Per-digit FD.** Digit 8 has the highest FD with and without the auxiliary term, and digit 1
#   the lowest: a 1 is one stroke, an 8 two loops whose sizes and closure vary.

# %% [markdown]
# ## Conclusion
#
# 1. **Autoencoder.** A convolutional autoencoder with a 10-dimensional code reconstructs test digits
#    with less than a third of the squared error of PCA with 10 components, and its error falls at every
#    latent size from 2 to 64 (sweep table and figure). Between the trunk and the code, wide fully
#    connected layers work best (fc2x512, then fc512) and a single linear map worst (design table).
# 2. **Correlation.** A larger code does not make its coordinates more correlated pair by pair: the
#    mean absolute correlation stays between 0.1 and 0.25 from $d = 4$ to 64, as for the untrained
#    encoder (correlation table and figure). At $d = 64$ the spectrum of the correlation matrix shows
#    a near-redundant direction that training creates (one seed).
# 3. **Transfer.** With 10 to 100 labels, the frozen pretrained encoder with a small head beats
#    fine-tuning the whole network under one shared recipe, and both beat training from scratch by far;
#    self-training on the unlabelled codes adds most at 10 labels. With 1,000 labels fine-tuning wins
#    (accuracy and paired-difference tables).
# 4. **Latent GAN.** A GAN that refines a 10-component Gaussian mixture of the codes has the lowest FD of
#    the samplers, lower than the mixture itself in every seed, while a GAN from Gaussian noise is
#    worse than the mixture in every seed (sampler table, sample grids). Paths through the GAN's noise
#    space pass through more realistic images; the straight line in the autoencoder's space is the
#    smoother path (interpolation table and strips).
# 5. **Conditional generator.** With the digit as a one-hot input, a projection discriminator and an
#    auxiliary code classifier, the requested digit is recognised more often than in the decoder's own
#    reconstructions of real digits, at some cost in spread; the noise carries the style (tables and
#    grids of section 5).

# %% [markdown]
# ## Theory 1: a transformer that can mimic a convolution, and an MLP
#
# **Feeding an image to a BERT-like encoder.**
#
# * **Tokens.** Each pixel is a token, or, for larger images, each small patch is a token, as in ViT
#   (Dosovitskiy et al. 2021). A shared linear map embeds each token's values (here the grey level, or
#   the $p^2$ grey levels of a $p\times p$ patch) into the model dimension. A 32x32 MNIST image becomes
#   1,024 pixel tokens, or 64 tokens of 4x4 patches. ViT's patch embedding is itself a convolution with
#   kernel size and stride $p$.
# * **Position.** Self-attention is blind to order: permuting the tokens permutes the outputs and
#   changes nothing else. Position must therefore be added, as a learned or sinusoidal embedding of the
#   token's (row, column), or as a **relative** encoding: an attention logit that depends on the 2-D
#   offset $\delta = p_j - p_i$ between query and key. The relative form is the one that lets attention
#   mimic a convolution.
#
# **Which attention pattern reproduces a $k\times k$ convolution.** A convolution computes
# $y_i = \sum_{\delta \in \Delta_k} W_\delta\, x_{i+\delta}$, with a *different* matrix $W_\delta$ for each of
# the $k^2$ offsets in the window $\Delta_k$. Cordonnier, Loukas and Jaggi (2020, *On the Relationship
# between Self-Attention and Convolutional Layers*) build it as follows. Head $h$ gets a
# content-independent logit $-\alpha_h\lVert\delta - \Delta_h\rVert^2$, which peaks at its own offset
# $\Delta_h$. This quadratic form is an inner product of a query vector with the relative encoding
# $r_\delta = (\lVert\delta\rVert^2, \delta_1, \delta_2)$, so the encoding needs dimension $D_p \ge 3$. For any
# finite $\alpha_h$ the softmax still gives the other tokens some weight; the attention becomes one-hot on
# $x_{i+\Delta_h}$ only in the limit $\alpha_h\to\infty$ (a hard mask, or a learned bias of $-\infty$ away from
# $\Delta_h$, gives it exactly). The head's value projection, followed by its block of the output
# projection, multiplies that token by a matrix that can be set to $W_{\Delta_h}$, and the output
# projection *sums* the heads. Their Theorem 1: a multi-head self-attention layer with $N_h$ heads of
# dimension $D_h$, output dimension $D_{out}$ and a relative positional encoding of dimension $D_p\ge 3$
# can express any convolution with a $\sqrt{N_h}\times\sqrt{N_h}$ kernel and $\min(D_h, D_{out})$ output
# channels. A 3x3 convolution thus needs 9 heads. At the border, as in a convolution, the token grid
# needs padding tokens for the offsets that fall outside the image.
#
# **Why one head is not enough.** One head returns one softmax-weighted *average* of value vectors, all
# multiplied by the same matrix. It can copy one offset, or blend several offsets with a shared weight
# matrix (a blurred filter with one weight per channel pair), but a convolution needs an independent
# matrix for every offset, hence one head per offset.
#
# **What the paper shows about trained models.** On CIFAR-10, their fully attentional networks with
# the quadratic encoding learn, in the early layers, heads that attend to grid-like patterns of offsets
# around the query pixel, much like a convolution's window; with learned positional encodings, some
# heads attend by position and others by content. That is evidence that trained attention *can*
# behave like convolution, not that trained transformers implement convolutions.
#
# **Mimicking a fully connected layer or an MLP.**
#
# * With the whole image as *one* token (a single patch), the position-wise feed-forward block is an
#   MLP on the flattened image, and stacking blocks stacks MLP layers, each with a residual
#   connection around it (a residual MLP).
# * With pixel tokens, a fully connected layer needs every output to see every input with its own
#   weight. A first feed-forward block, given one-hot position embeddings, writes each pixel's value
#   into a channel reserved for its position: for inputs in $[0, 1]$, the unit
#   $\mathrm{ReLU}(x_j - 2(1-[p_j = m]))$ equals $x_j$ in channel $m$ at the token $j = m$ and 0 at every
#   other token. An attention head with zero query and key weights attends uniformly; with a value
#   dimension of $N$ it averages these channels over the tokens and writes the result into a second set
#   of $N$ channels (the residual connection keeps the first set, which still holds each token's own
#   pixel). Every token then holds the whole flattened image, scaled by $1/N$, in those channels, and
#   the next feed-forward block applies any fully connected layer or MLP to it.
# * This needs a model width of about $2N$ channels ($N = 1{,}024$ for a 32x32 image) plus the position
#   channels, a head (or heads) with value dimension $N$ in all, and $N$ hidden units in the first
#   feed-forward block: far wider than the construction of a convolution, which needs only as many
#   channels as the convolution has. LayerNorm, which the construction ignores, must be set to pass
#   these channels through (or be absent).
#
# Attention therefore spans both extremes: sharply peaked relative-position heads give local,
# convolution-like mixing, and uniform heads give global, fully connected mixing.

# %% [markdown]
# ## Theory 2: three image-translation strategies against three kinds of data
#
# The three strategies:
#
# * **(a)** an unconditional GAN whose generator is fed class-A images, with a discriminator that
#   separates $G(A)$ from class-B images;
# * **(b)** CycleGAN (Zhu et al. 2017): two such GANs, $A\to B$ and $B\to A$, tied by a
#   cycle-consistency loss $\lVert F(G(a)) - a\rVert_1 + \lVert G(F(b)) - b\rVert_1$;
# * **(c)** a conditional GAN whose discriminator sees pairs $(I, G(I))$ against real pairs $(I, J)$:
#   pix2pix (Isola et al. 2017), usually with an extra $L_1$ term.
#
# | | (i) paired, accurate correspondence | (ii) paired, loose correspondence | (iii) unpaired, same topic, different rendering |
# |---|---|---|---|
# | **(a) GAN, A in, B judged** | Trainable, but ignores the pairs | Trainable, but ignores the pairs | Applies with a content constraint |
# | **(b) CycleGAN** | Applies, but wastes the pairs | Applies | Applies: its intended use |
# | **(c) pair-conditional GAN** | Applies: the best choice | Applies, with a weaker $L_1$ term | Does not apply |
#
# **(a)** Nothing in the adversarial loss links the output to the input: the discriminator only asks
# "does this look like B?", so any B-looking image is a perfect answer for any input, and the generator
# may ignore $A$ or collapse onto a few convincing B images.
#
# * On (i) and (ii) it throws away the pairing, the most valuable information in the data.
# * On (iii) it works when something else keeps the content: a generator that can only make local
#   changes, or an added content loss. SimGAN (Shrivastava et al. 2017) is a known use: a fully
#   convolutional refiner makes synthetic eye images look real, trained with an adversarial loss
#   against unpaired real images plus a *self-regularisation* term, the $L_1$ distance between the
#   refined and the synthetic image, so that the gaze direction annotated on the synthetic image stays
#   valid.
#
# Our section 4 shows the same freedom: an unconditional generator maps its input anywhere on the data
# distribution. In section 5 the digit is respected because the discriminator sees it too (helped by
# the auxiliary classifier's term).
#
# **(b) CycleGAN.** The cycle loss asks $F$ to undo $G$, so $G(a)$ must keep enough of $a$ to rebuild it:
# content-preserving translation without pairs.
#
# * **(iii)** is its purpose: horses to zebras, summer to winter landscapes, photos to paintings in the
#   style of Monet.
# * **(ii):** the loose pairs can be used as two unpaired sets, which suits them better than a pixel
#   loss between misaligned images; an example is photos and hand-drawn sketches of the same scenes.
# * **(i):** it works, but it discards the supervision that pix2pix uses. Its authors also report that
#   it usually succeeds on changes of colour and texture and often fails on changes of geometry (dog
#   to cat, for example); the cycle loss and the generator favour near one-to-one, local mappings, so
#   large geometric changes are hard for it rather than impossible.
#
# **(c) pix2pix.** The discriminator judges whether $G(I)$ is a plausible partner of this very $I$,
# which needs true pairs to learn from.
#
# * **(i)** is its ideal setting: semantic label maps to street photos, edges to shoes, aerial photos
#   to maps, day to night pictures of the same aligned scenes.
# * **(ii):** it still applies, since the adversarial pair loss asks only for a *plausible* partner;
#   the $L_1$ term should then be weakened or dropped, because averaging over misaligned partner
#   images blurs. Examples are rough sketches to photos, or a pose to an image of a person.
# * **(iii):** there are no $(I, J)$ pairs to show the discriminator, so it cannot be trained.
#
# The projection discriminator of our section 5, which sees (digit, code) pairs, is the same mechanism
# as (c), with a label in place of the input image.

# %% [markdown]
# ## Appendix: reproducibility
#
# Every number of the report comes from one run of this notebook, top to bottom, with every model
# trained in that run. The first table gives the machine, the training precision and the library
# versions. The convolutional networks (autoencoders, section 3's classifiers, the evaluation
# classifier) run their forward passes in bfloat16 autocast where the hardware computes bfloat16
# natively (CUDA, or a CPU with AMX or AVX512-BF16) and in float32 elsewhere; losses, optimiser
# states and every metric are float32, and the latent GANs train in float32. The second table gives
# the run time of each section, also in units of one autoencoder training step timed at the start of
# the run, which makes runs on machines of different speed comparable. The third gives the recipe of
# every model family.

# %%
clock.finish()
display(h.table(h.environment_rows(), {"item": "setting", "value": "value"}))
display(h.table(h.runtime_rows(), {"part": "part of the run", "seconds": "seconds",
                                   "steps": "in autoencoder training steps"}, {"seconds": ".0f", "steps": ",.0f"}))
display(h.table(h.recipe_rows(), {"model": "model", "recipe": "recipe"}))

# %%
# Fills in the table of headline results at the top of the report.
table = h.table(h.headline_rows(), {"result": "result", "value": "value"})
summary_display.update(Markdown("**Headline results of this run**\n\n" + table.data))
