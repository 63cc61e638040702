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
# A small convolutional autoencoder compresses an MNIST digit to a code of about ten numbers. The report
# asks what that code holds and what it is good for: (1) the best layers at the bottleneck and the effect
# of the code size $d$, against PCA; (2) whether a larger code has more correlated coordinates; (3) a frozen
# encoder with a small classifier against training the whole network on 10 to 1,000 labels; (4) a GAN that
# generates codes for the pretrained decoder, and interpolation in its noise space against the code space;
# (5) a generator that takes the digit to draw as an input. Two theory questions and an appendix (recipes,
# model code) follow. Images are the 28x28 MNIST digits zero-padded to 32x32, in [0, 1].
#
# **One rule names winners:** a side wins a comparison when the 95% Student t interval of the paired
# differences (same seeds, same draws) excludes zero; otherwise the two are *level*.

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
# The 60,000 training and 10,000 test digits, as in-memory tensors checked against pinned checksums. The
# autoencoders train on the first 55,000 training images; the last 5,000 are held out. Every searched
# setting was chosen on those 5,000 held-out images, by models that never saw a test image; the other
# settings are fixed in advance (appendix). A few fixed GAN settings were tuned earlier against the test
# images (appendix); apart from those, the test images are used once, for the reported numbers.

# %%
train_x, train_y = h.load_mnist(train=True)
test_x, test_y = h.load_mnist(train=False)
print(f"{len(train_x):,} training and {len(test_x):,} test images of {tuple(train_x.shape[1:])} pixels in [0, 1]")
print("test digits per class:", test_y.bincount().tolist())

# %% [markdown]
# ## 1. A convolutional autoencoder
#
# **Architecture.** The encoder's trunk, three stride-2 3x3 convolutions (16, 32, 64 channels) with
# BatchNorm and ReLU, takes the image to a 4x4x64 map; the decoder mirrors it with transposed
# convolutions and a sigmoid. Six designs connect the map to the $d$-dimensional code (mirrored in the
# decoder):
#
# * **linear**: one linear map to $d$;
# * **fc128**, **fc512**: one hidden fully connected ReLU layer of 128 or 512 units; **fc2x512**: two of 512;
# * **conv**: a stride-2 3x3 convolution to a 2x2x64 map, then a 2x2 convolution to $d$ channels;
#   **conv_wide**: the same with a 2x2x160 map, as many parameters as fc128 but 640 hidden units with
#   shared weights.
#
# **Training.** Binary cross-entropy on the pixels; Adam, batch 128, 10 epochs, one-cycle learning rate
# (peak $4\cdot10^{-3}$). Scores: the test MSE per pixel on the 28x28 digit area, and PSNR.

# %% [markdown]
# ### 1a. Learning curves

# %%
s1 = h.train_autoencoder_study(train_x)
clock.use_unit(*s1.trained[h.ae_config()])  # the run's cost unit: this model's seconds per training step
scores = h.reconstruction_scores(s1, test_x)
h.plot_learning_curves(s1)
plt.show()

# %% [markdown]
# ### 1b. The layers between the trunk and the code ($d = 10$)

# %%
designs = h.design_rows(s1, scores)
display(h.DESIGN_TABLE.show(designs))

# %% [markdown]
# **Result.** The single linear map is the worst design and the wide fully connected layers the best:
# fc512 and fc2x512 have the lowest test error in each of their two seeds. fc2x512 is the lower of the two
# in both seeds, too few for a verdict, so the report uses fc512, two thirds of its size.
#
# **Why width helps.** The design's error falls with the number of hidden units before the code, from none (linear) through 128
# (fc128) and 256 (conv; level with fc128 within the seed spread) to 640 shared units (conv_wide) and 512
# unshared ones (fc512). A linear map can only pick $d$
# directions of the trunk's features; a hidden ReLU layer first splits its input into regions, so the code
# can use different features for different digits, and the decoder's mirror layer can draw differently
# in each region. At equal parameter count conv_wide beats fc128 by far more than the seed spread of fc512:
# more hidden units matter more than unshared weights. fc512, with fewer units than conv_wide but more than three times its parameters, is
# lower still.

# %% [markdown]
# ### 1c. Latent size against PCA
#
# PCA with $d$ components, the best linear code of size $d$ for squared error, is fitted on the same
# 55,000 training digits.

# %%
pca = h.pca_reconstructions(train_x[:h.RECIPE.ae_train_size], test_x, h.RECIPE.sweep_ds)
sweep = h.sweep_rows(s1, scores, pca, test_x)
h.record_metrics({"ae.epochs": h.ae_config().epochs, "ae.seeds": len(h.RECIPE.seeds)})
display(h.SWEEP_TABLE.show(sweep))
h.plot_sweep(sweep)
plt.show()

# %%
long = h.long_schedule_rows(s1, scores)
display(h.LONG_SCHEDULE_TABLE.show(long))

# %% [markdown]
# **Result.** The test error falls at every step of $d$, and the autoencoder beats PCA at every $d$,
# at $d = 10$ by a factor of more than three. Three seeds at $d = 4$, 10 and 64 differ by a few percent
# of the error, far less than the gap between neighbouring sizes.
#
# **Why.** PCA can only project onto a flat subspace; the digits lie near a curved set of about 14
# dimensions (section 2), which a nonlinear code of 10 numbers can follow far more closely than a flat one.
#
# **Not at the plateau.** Twice the epochs lowers the test error by a few percent at $d = 10$ and by
# about a fifth at $d = 64$ (table above): the fixed 10-epoch recipe understates what large codes gain.

# %%
rows = {"test digits": test_x[:12], **{f"d = {d}": h.reconstruct(s1.model(d), test_x[:12]) for d in h.RECIPE.sweep_ds}}
h.plot_image_rows(rows, "The first 12 test digits and their reconstructions (fc512, seed 0)", "reconstructions")
plt.show()
clock.section(1)

# %% [markdown]
# **Reconstructions** (columns counted from the left). At $d = 2$ both 4s (columns 5 and 7) come back as 9s
# and the 9 in column 10 as a 4; from $d = 4$ all twelve keep their identity, and larger codes add detail
# such as stroke thickness and slant.

# %% [markdown]
# ## 2. How correlated are the latent coordinates?
#
# **Number.** The mean absolute off-diagonal Pearson correlation of the 10,000 test codes,
# $\overline{|r|} = \frac{1}{d(d-1)}\sum_{i\neq j}|R_{ij}|$ (0 for uncorrelated coordinates), with a 95%
# bootstrap interval over the test images for seed 0, and seeds 0 to 2 at $d = 4$, 10 and 64. A mean of
# pairs can hide redundancy spread over many coordinates, so the second table gives the smallest
# eigenvalue of the correlation matrix (near 0 when one direction of the code is almost a linear
# combination of the others) and the Gaussian total correlation per coordinate,
# $-\frac{1}{2d}\log\det R$. **References:** PCA codes (uncorrelated by construction) and the same encoder
# untrained, at three initialisations: what the architecture alone produces. **Intrinsic dimension:** the
# TwoNN estimate (Facco et al. 2017), from the ratio of each point's second to first nearest-neighbour
# distance, of the test images and of each code.

# %%
codes = {key: h.encode(s1.trained[config][0].encoder, test_x) for key, config in s1.sweep.items()}
untrained = h.untrained_codes(test_x)
corr = h.correlation_rows(codes, untrained, {d: c for d, (_, c) in pca.items()})
display(h.CORRELATION_TABLE.show(corr))
h.plot_correlation(corr)
plt.show()

# %%
display(h.CORRELATION_DETAIL_TABLE.render(corr))
image_id = h.intrinsic_dimension(test_x)
h.record_metrics({"id.twonn.images": image_id})
print(f"intrinsic dimension of the 10,000 test images (TwoNN): {image_id:.1f}")
h.plot_spectrum(codes, untrained)
plt.show()
clock.section(2)

# %% [markdown]
# **Result.** A larger code does not make its coordinates more correlated pair by pair: over the three
# seeds, $\overline{|r|}$ is lower at $d = 64$ than at $d = 4$, and at $d = 4$, 10 and 64 it is level with the untrained encoder's by the paired rule
# (figure; at $d = 4$ only just, every trained seed lying above every untrained one). Seeds differ by more than the bootstrap band (at $d = 10$ by about 0.02), so
# the wiggles between $d = 8$ and 32, from seed 0 alone, are not read as a trend; nor is $d = 2$, whose
# mean is a single pair and whose untrained value ranges from 0.03 to 0.31 over initialisations. What
# training changes shows beyond pairs: at $d = 64$ the smallest eigenvalue falls 44 to 104 times below the
# untrained encoder's, and the total correlation per coordinate rises, in every seed (both beyond the noise):
# some directions of the code become near-copies of others.
#
# **Why.** Reconstruction does not reward decorrelated coordinates, since the decoder can undo any
# invertible mixing of the code, so the pairwise level stays where the architecture puts it. What matters
# is how many directions the data need. The TwoNN estimate of the test images' intrinsic dimension is about
# 14 (printed above; TwoNN tends to underestimate large dimensions, so read it as a lower bound). The codes'
# own intrinsic dimension (last column) equals $d$ up to $d = 4$, then grows ever more slowly and levels
# off near 11 from $d = 32$ on. Below that level every coordinate carries something the others do not;
# above it the code has more coordinates than the digits have directions, and nothing in the loss stops
# training from spending the spare ones on near-copies of others: hence the collapse of the smallest eigenvalue at $d = 64$, and not at $d \le 32$, where trained and
# untrained smallest eigenvalues stay within a factor of two: it appears only well above the data's
# dimension. The $d = 64$ model is also the furthest from its plateau (section 1), so the collapse may grow
# or shrink with training.

# %% [markdown]
# ## 3. Transfer learning from tens of labels
#
# **Setup.** The pretrained encoder is the $d = 10$ fc512 model of section 1 (seed 0); the classifier is
# this encoder, a fixed standardisation of its outputs and an MLP head $10\to128\to10$. Six arms:
#
# * **frozen**: only the head learns, on the codes of the labelled images;
# * **selftrain**: then five rounds of pseudo-labels (Lee 2013) on the unlabelled training codes, a fresh
#   head each round (Cascante-Bonilla et al. 2021);
# * **cluster**: cluster-then-label (N2D, McConville et al. 2020): UMAP projects the unlabelled training
#   codes, a 10-component Gaussian mixture clusters them, and each cluster takes the name of the digit
#   whose labelled images give it most responsibility; fitted at three seeds;
# * **finetune**: encoder and head learn, the encoder at its own smaller learning rate;
# * **whole**: the exercise's plain reading, the whole pretrained network trained end to end at one
#   learning rate, BatchNorm statistics learning too;
# * **scratch**: the same network from random weights.
#
# **Protocol.** 10 class-balanced draws of labelled training images per number of labels; all arms of a
# draw see the same images, and draw $s$ uses cluster fit $s \bmod 3$, so the cluster arm's spread holds
# the fit's variance. Adam, weight decay $10^{-4}$. Each arm's settings were chosen for that arm on the
# held-out images (first table; validation curves in the figure).

# %%
report_ae = s1.model()
selection = h.selection_rows()
display(h.SELECTION_TABLE.show(selection))
h.plot_validation_curves(h.read_validation())
plt.show()

# %%
runs = h.transfer_experiment(report_ae.config, report_ae.encoder.state_dict(), train_x, train_y, test_x, test_y,
                             h.transfer_draws())
transfer = h.transfer_summary(runs)
display(Markdown(f"Test accuracy, mean ± standard deviation over {transfer[0]['draws']} draws, and (in brackets) "
                 "the mean accuracy on the labelled training images:"))
display(h.TRANSFER_TABLE.show(transfer))

# %%
paired = h.paired_rows(transfer)
display(Markdown("Paired differences of test accuracy over the draws: mean [95% Student t interval], and the "
                 "better arm where the interval excludes zero:"))
display(h.PAIRED_TABLE.show(paired))
h.plot_transfer(transfer)
plt.show()

# %%
control = h.encoder_lr0_control(report_ae.config, report_ae.encoder.state_dict(), train_x, train_y, test_x, test_y)
display(h.CONTROL_TABLE.show([control]))
clock.section(3)

# %% [markdown]
# **Result: frozen against the whole network** (paired table, first column). The frozen encoder with a
# small head wins from 10 to 100 labels, by about 7 points at 10 and 20 labels and 2 at 100, and the whole
# network wins at 1,000 labels, by half a point. Fine-tuning at a small encoder learning rate stays within
# a point of the frozen head at every number of labels: its encoder barely moves, and with encoder
# learning rate 0 the same code gives exactly the frozen arm's accuracy (control). Up to 100 labels the
# frozen, fine-tuned, whole and scratch arms classify all of their labelled images correctly while their
# test accuracy is far lower: they overfit, less so at 1,000.
#
# **Why.** The whole network trains over half a million encoder weights on ten to a hundred images. Its
# validation curve at 10 labels peaks early and then falls (figure): moving the encoder at the head's rate
# fits the few labels by distorting codes that served every digit, and the frozen encoder cannot be
# distorted. At 1,000 labels there is enough signal to adapt the encoder to the task. The two arms also
# differ in head learning rate and length (first table), so the comparison is of each arm at its own
# validated settings; which difference matters most is not isolated.
#
# **Unlabelled images help most.** Self-training beats the frozen head from 10 to 100 labels, by 13 points
# at 10 and 2 at 100, and loses by a point at 1,000, where it also fits its own labelled images less well
# (95% against 99%): the many pseudo-labels, some wrong, outweigh the real ones. Cluster-then-label on the same frozen codes beats self-training at every number
# of labels and reaches about 96% from 20 labels on: the codes already group by digit without any label,
# and one label per cluster names the groups. More labels cannot raise it beyond how well the clusters
# match the digits; from 20 labels on every draw names the clusters alike, and its standard deviation over
# draws, which includes the three fits, is 0.01 points. Both arms use the 60,000 unlabelled codes: they show what unlabelled data adds, not a
# limit of the frozen representation. Training from scratch is the least accurate arm at every number of labels. Of the 25
# paired intervals, four end within a quarter of a point of zero (frozen against whole at 100 labels,
# frozen against fine-tuning at 50, 100 and 1,000 labels), so those verdicts are fragile.

# %% [markdown]
# ## 4. A GAN in the autoencoder's latent space
#
# ### An evaluation classifier, and the floors of the Fréchet distance
# A small CNN classifier, trained on the first 55,000 training images (its epochs chosen on the held-out
# ones), defines a Fréchet distance (**FD**: the FID's formula, Heusel et al. 2017, in this classifier's
# 128 penultimate features, so on this report's own scale) and labels generated digits. Every set is
# compared with the 10,000 test images, and every sampler draws 5,000 samples, as many as the two
# references: 5,000 held-out real images (the **floor**) and their reconstructions by the autoencoder.

# %%
clf, _ = h.evaluation_classifier(train_x, train_y)
held_x, held_y = h.validation_data("validation")  # real digits the classifier never saw
test_feats, test_probs = h.classify(clf, test_x)
held_feats, held_probs = h.classify(clf, held_x)
references = {"accuracy": float((test_probs.argmax(1) == test_y.numpy()).mean()), "images": len(held_x),
              "floor": h.frechet_distance(held_feats, test_feats),
              "recon": h.frechet_distance(h.classify(clf, h.reconstruct(report_ae, held_x))[0], test_feats)}
display(h.REFERENCES_TABLE.show([references]))

# %% [markdown]
# ### The latent GAN
#
# **Recipe** (appendix). Generator and discriminator are MLPs (3 hidden layers of 256 units) on
# standardised codes, trained with the non-saturating loss and an R1 penalty on real codes (Mescheder et
# al. 2018); generated codes are decoded by the frozen decoder.
#
# * **Gaussian noise:** $k = 8$ at three seeds, and $k = 2$, 4 and 16 at seed 0.
# * **Mixture prior:** the noise is a mixture component and $z\sim N(0, I_{10})$; the generator returns
#   $b+\mathrm{MLP}(b, c)$ with $b$ drawn from a 10-component Gaussian mixture fitted to the codes, the MLP
#   starting at zero, so before training it *is* that mixture; samples come from a moving average of its
#   weights (Yazici et al. 2019).
#
# Lengths were chosen on held-out FD: 24,000 steps for Gaussian noise (the longest tried, its FD still
# falling) and 4,000 for the mixture prior. The other noise sizes share the $k = 8$ recipe, so $k$ is the
# only change. **Baselines.** A full-covariance Gaussian, and Gaussian mixtures (Ghosh et al. 2020) of 10 components
# and of 100, the best held-out log-likelihood among 10 to 100. **Scores.** The FD; **precision** and
# **recall** of $k$-nearest-neighbour manifolds in the classifier's features (Kynkäänniemi et al. 2019)
# and **coverage** (Naeem et al. 2020). Each seed's FD is the mean of three independent sample draws, so
# the spread over seeds holds both the training and the sampling noise; the FD's own sampling noise comes
# from 20 draws of one fixed sampler (third row).

# %%
train_codes, test_codes = h.encode(report_ae.encoder, train_x), h.encode(report_ae.encoder, test_x)
gans = h.train_section4_gans(report_ae.config, train_codes)
samplers = h.section4_samplers(gans, train_codes)
generated = h.sampler_rows(samplers, report_ae.decoder, clf, test_feats)
draws = h.fd_sample_noise(samplers["gmm_prior", 0], report_ae.decoder, clf, test_feats)
h.record_metrics({"gan.fd.sample_noise_std": float(np.std(draws, ddof=1)), "gan.fd.sample_noise_draws": len(draws),
                  "gan.fd.seed_draws": h.RECIPE.fd_seed_draws, "gan.seeds": len(h.RECIPE.gan_seeds)})

# %%
floors = [{"sampler": "held-out real images (floor)", "fd_seeds": [references["floor"]]},
          {"sampler": "their reconstructions", "fd_seeds": [references["recon"]]},
          {"sampler": f"mixture-prior GAN, seed 0: {len(draws)} sample draws", "seeds": 1, "fd_seeds": draws}]
display(h.SAMPLER_TABLE.show(generated, unrecorded=floors))
display(h.SAMPLER_PAIRS_TABLE.show(h.sampler_pair_rows(generated)))

# %%
for kind, title in (("gmm_prior", "the mixture prior"), ("k8", "Gaussian noise (k=8)")):
    h.plot_digit_grid(h.decode(report_ae.decoder, h.sample_codes(gans[kind, 0].generator, 64, seed=7)),
                      f"64 samples of the latent GAN with {title}, seed 0, decoded",
                      "gan_samples_gmm_prior" if kind == "gmm_prior" else "gan_samples")
    plt.show()

# %% [markdown]
# **Result** (sampler table; paired table below it). Every sampler stays above the floor of held-out
# real images. Of the five paired comparisons over three seeds, two have a winner: the 100-component
# mixture has a lower FD than the Gaussian-noise GAN, and the mixture-prior GAN a lower FD than the
# 10-component mixture it starts from. The Gaussian-noise and mixture-prior GANs are level, as are the
# mixture-prior GAN and the 100-component mixture. With three seeds the interval uses $t = 4.3$, so
# "level" means undetermined, not equal. A single Gaussian has the worst FD and precision but the highest
# recall: a wide cloud that reaches near most real digits but puts many samples off them, while about
# half of the real digits have no sample close by (coverage 0.51).
#
# **Noise size** (one seed each, same recipe). The FD falls from $k = 2$ to 8 and little further at 16,
# and recall collapses below $k = 8$ (0.07 at $k = 2$): a generator cannot spread fewer noise dimensions
# over a set of higher dimension, and the codes' intrinsic dimension at $d = 10$ is about 8 (section 2).
#
# **Why a mixture does so well.** The codes form separate clusters, one or a few per digit. A mixture
# puts a Gaussian on each; a generator from one Gaussian must tear a connected cloud into separate
# pieces, which a smooth network can only approximate with steep transitions that leave some samples
# between clusters. The mixture-prior GAN starts from the clusters and improves on its mixture by
# adversarial refinement.

# %% [markdown]
# ### Interpolation: in the GAN's noise space against in the autoencoder's latent space
#
# The same 200 pairs of real test images of different digits are joined in 10 steps by three paths:
# the **AE line**, the straight line between the two codes, decoded; and the **GAN line** and **GAN slerp**
# through the Gaussian-noise GAN ($k = 8$, seed 0): each code is first inverted (Adam finds the noise
# that generates the closest code), and the two noise vectors are joined by a line or by a great circle
# (slerp; White 2016). Realism of the 8 inner images: classifier confidence and FD, beside 1,600 held-out
# real images. Smoothness: the largest step in classifier features as a share of the path (0.11 for equal
# steps), the label changes, and the share of paths through a digit neither end shows. Density: each
# path's distance to the nearest training code (last figure).

# %%
first, second = h.interpolation_pairs(test_y)
paths, code_paths, inversion_error = h.interpolation_paths(report_ae.decoder, gans["k8", 0].generator,
                                                           test_codes[first], test_codes[second])
h.record_metrics({"interp.inversion.code_mse": inversion_error.mean(), "interp.pairs": len(first)})
print(f"generator inversion: mean squared error {inversion_error.mean():.4f} per standardised coordinate "
      f"(the codes' own variance is 1); median {inversion_error.median():.4f}, worst {inversion_error.max():.4f}")
h.plot_image_rows(h.interpolation_strips(paths, test_x[first], test_x[second]),
                  "The same real test digits (first and last column) joined by three kinds of path; α: position on the path",
                  "interpolation_strips", col_labels=["real", *[f"{a:.2f}" for a in np.linspace(0, 1, 10)], "real"])
plt.show()

# %%
interp = h.interpolation_rows(paths, clf, test_feats, held_x[:len(first) * 8])
display(h.INTERP_TABLE.show(interp))
density = h.path_density(code_paths, train_codes)
h.record_metrics(h.density_metrics(density))
h.plot_path_density(density)
plt.show()
clock.section(4)

# %% [markdown]
# **Which is better depends on the criterion.** The GAN's paths are more realistic: their inner images
# have a far lower FD and a higher confidence than the AE line's, which draws faint blends of the two
# digits midway (pair 1 in the strips; the GAN's paths blend too, in pair 5). The AE line is smoother: a smaller largest step, more paths with
# exactly one label change, fewer through a third digit. The GAN paths stay realistic by jumping, often
# through a digit neither end shows (pair 1 turns from a 1 into a 7 before becoming a 0).
#
# **Why.** Along the AE line the distance to the nearest training code rises by about a quarter from the
# ends to the middle; along the GAN's paths by a tenth (line) and a fifth (slerp) (figure; means over the
# 200 pairs). A straight line between two codes of different digits crosses the empty space
# between their clusters, where the decoder has never been trained and draws blends. The GAN maps its
# connected noise space onto the clusters, so its paths stay on the data and must cross from one cluster to
# the next in a few steps, through whatever cluster lies between: the jumps and the third digits. The
# distance does not order the GAN's two paths (slerp strays further than the line yet has the lower FD), so
# it explains the AE line's blends, not every difference in realism. One GAN
# seed and 200 pairs; the paths' ends are decoded codes, and the inversion leaves an error (printed).

# %% [markdown]
# ## 5. A generator that takes the digit as input
#
# **Design.** A conditional GAN in the same latent space (Mirza & Osindero 2014), with the Gaussian-noise GAN's architecture and learning rate and its own length (3,000 steps, chosen on
# held-out FD). The generator gets the noise ($k = 8$) **concatenated with a one-hot vector of the requested
# digit**, so only the shape is random; a **projection discriminator** (Miyato & Koyama 2018) judges whether
# a code is realistic *for that digit*; an **auxiliary classifier** of codes, trained on the real codes and
# frozen, adds 0.1 times its cross-entropy for the requested digit to the generator's loss (AC-GAN, Odena
# et al. 2017, generator side), a weight chosen on held-out FD. Ablation: weights 0.1 and 0 at three seeds,
# sharing initial weights, batches and noise.
#
# **Scores**, on 1,000 samples per digit: **recognised**, the share the evaluation classifier reads as the
# requested digit; the **spread ratio**, the feature spread of the recognised samples over that of the
# recognised reconstructions of the digit's test images (1: as varied as real digits through this
# decoder); FD, precision and recall against that digit's test images; and **train on generated, test on
# real** (Ravuri & Vinyals 2019): the evaluation classifier's recipe trained on 20,000 generated digits,
# beside the same trained on 20,000 reconstructed real ones.

# %%
cgans = {(w, s): h.latent_gan(h.gan_config(h.RECIPE.report_noise_dim, report_ae.config, conditional=True, aux_weight=w, seed=s),
                              train_codes, train_y)[0] for w in (h.RECIPE.cgan_aux_weight, 0.0) for s in h.RECIPE.cgan_seeds}
recon_feats, recon_probs = h.classify(clf, h.reconstruct(report_ae, test_x))
per_digit = {key: h.conditional_scores(report_ae.decoder, g.generator, clf, test_feats, test_y, recon_feats, recon_probs)
             for key, g in cgans.items()}
conditional = h.conditional_rows(per_digit)
h.record_metrics({"cgan.ablation.seeds": len(h.RECIPE.cgan_seeds)})
display(h.CONDITIONAL_TABLE.show(conditional))

# %%
ablation = h.ablation_rows(conditional)
display(h.ABLATION_TABLE.show(ablation))

# %%
ceiling = {"recon": h.recognised_share_per_digit(recon_probs, test_y),
           "aux": h.aux_classifier_accuracy(cgans[h.RECIPE.cgan_aux_weight, 0], test_codes, test_y)}
display(h.CEILING_TABLE.show([ceiling]))
digits = h.digit_rows(per_digit)
display(h.DIGIT_TABLE.show(digits))

# %%
fake_x, fake_y = h.balanced_generated(report_ae.decoder, cgans[h.RECIPE.cgan_aux_weight, 0].generator, h.RECIPE.cas_size)
real_idx = h.balanced_subset(train_y, h.RECIPE.cas_size, seed=7)
cas = {"n": h.RECIPE.cas_size, "generated": h.train_on_generated_accuracy(fake_x, fake_y, test_x, test_y),
       "real": h.train_on_generated_accuracy(h.reconstruct(report_ae, train_x[real_idx]), train_y[real_idx], test_x, test_y)}
display(h.CAS_TABLE.show([cas]))

# %%
h.plot_digit_grid(torch.cat([h.generate(10, digit=d, seed=0) for d in range(10)]),
                  "One row per requested digit, one column per noise vector z (the same z in each column)",
                  "cgan_same_noise", nrow=10, row_labels=[f"digit {d}" for d in range(10)],
                  col_labels=[f"z{j + 1}" for j in range(10)])
plt.show()
h.plot_digit_grid(h.generate(64, digit=7, seed=1), "64 samples of the digit 7: the noise varies the shape", "cgan_seven", nrow=16)
plt.show()
walks = h.noise_walk(report_ae.decoder, cgans[h.RECIPE.cgan_aux_weight, 0].generator, digit=2)
h.plot_image_rows({f"walk {i + 1}": w for i, w in enumerate(walks)},
                  "The digit 2 along great circles (slerp) between three pairs of noise vectors", "cgan_walk",
                  col_labels=[f"{a:.2f}" for a in np.linspace(0, 1, walks.shape[1])])
plt.show()

# %%
picker, show_digit = h.digit_picker(report_ae.decoder, cgans[h.RECIPE.cgan_aux_weight, 0].generator)
display(picker)
clock.section(5)

# %% [markdown]
# **Result** (ablation table; three seeds, paired). With weight 0.1 the requested digit is recognised more
# often, on average and for the worst digit, and precision is higher; the price is variety: the recognised
# samples' spread ratio falls by about 0.05 and recall by about 0.08. All five differences are beyond the
# noise; the mean per-digit FD is level. Without the term the recognised samples are as varied as the
# decoder's reconstructions of real digits (spread ratio near 1). With it, the generator's samples are
# recognised more often than those reconstructions (99.6% against 96.9%). A classifier trained only on
# generated digits reaches 96.6% on the real test set, against 97.7% when trained on as many reconstructed
# real digits (one generator and one classifier, so no verdict). Digit 8 has the highest FD and the lowest
# recall, digit 1 the lowest FD and the highest recall (per-digit table): a 1 is one stroke, an 8 two loops
# whose sizes and closure vary.
#
# **The noise carries the style.** In the first grid each column shares one noise vector and one style
# while the digit follows the row, except column 8, where the requested 0 and 6 look like 8s. Along a walk through the noise with the digit fixed (last figure), the 2
# changes gradually: its slant and stroke weight drift, and its base turns from a flat stroke into a loop
# (walks 1 and 3); walk 2 starts from a malformed, 3-like shape and ends as a clean 2 with a looped base.
# The 64 sampled 7s vary the same way, in slant, stroke thickness and the top bar, not in position or size.
#
# **Why the term trades variety for recognition.** The auxiliary term pulls codes towards where its
# classifier is sure, the centres of the digit clusters; that raises recognition above the reconstructions
# of real test digits, some of which decode ambiguously, and shrinks each digit's spread.

# %% [markdown]
# ## Conclusion
#
# 1. **Autoencoder.** With a 10-number code the autoencoder's test error is less than a third of PCA's,
#    and it falls at every code size from 2 to 64. Wide fully connected layers at the bottleneck work best
#    and a single linear map worst: the hidden units let the code use different features for different
#    digits.
# 2. **Correlation.** A larger code does not make its coordinates more correlated pair by pair; the
#    pairwise level stays near the untrained architecture's. At $d = 64$, far more coordinates than the
#    digits have directions (about 11 to 14), training makes some of them near-copies of others.
# 3. **Transfer.** The frozen encoder with a small head beats the whole network trained on the same few
#    labels up to 100 labels and loses by half a point at 1,000. The frozen codes hold more than a head
#    finds from few labels: cluster-then-label on them reaches about 96% from 20 labels.
# 4. **Latent GAN.** The 100-component mixture has a lower FD than the Gaussian-noise GAN; the two GANs
#    are level; noise smaller than the codes' intrinsic dimension loses recall. Paths through the GAN's
#    noise space give more realistic images, the straight line in the code space the smoother morph,
#    because the line crosses the empty space between digit clusters and the GAN jumps across it.
# 5. **Conditional generator.** With the digit as an input, the requested digit is recognised in 99.6%
#    of samples, the noise carries the style, and an auxiliary classifier term buys recognition with
#    variety.

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
# **What BERT's attention adds, and how the answer is read out.** BERT's attention is bidirectional
# and unmasked (Devlin et al. 2019): every token attends to every other token, before and after it in the
# sequence. That is what allows a kernel *centred* on a pixel, since its window holds pixels that come
# later in raster order (the row below, the pixel to the right). A causal mask, as in a GPT-style
# decoder, would leave each pixel only the tokens before it: the rows above and the left part of its own
# row, a half kernel. To classify the image, a learned class token is prepended and its final state feeds
# a linear classifier (BERT's [CLS], also used by ViT), or the outputs of all tokens are averaged (global
# average pooling, as after a CNN's last convolution) and classified.
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
# * **Where the cycle loss misleads.** It asks each map to be invertible. When the true mapping is
#   many-to-one (a photo to a label map, say, which drops the texture), $G$ must still keep what $F$
#   needs to rebuild $a$: Chu, Zhmoginov and Sandler (2017) showed that CycleGAN hides it in
#   low-amplitude, high-frequency patterns of $G(a)$ that a viewer does not see (steganography), so
#   the translation looks right while carrying the source image, and a tiny change of $G(a)$ can change
#   $F(G(a))$ completely. In the one-to-many direction the deterministic $F$ can give only one of the
#   possible answers; Augmented CycleGAN (Almahairi et al. 2018) adds latent noise for that.
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
# **How the searched settings were chosen.** The validation search trains every model on the first
# 55,000 training images and scores it on the next 5,000, over 3 class-balanced draws at each of 10, 100
# and 1,000 labels drawn apart from the report's. Section 3: per arm, a small grid (head learning rate
# $3\cdot10^{-4}$, $10^{-3}$, $3\cdot10^{-3}$; fine-tuning's encoder learning rate $10^{-5}$, $10^{-4}$,
# $10^{-3}$ with BatchNorm statistics frozen or learning, then random shifts or none; scratch's learning
# rate $10^{-3}$ or $3\cdot10^{-3}$, then shifts or none; cluster-then-label's projection of 2 or 10
# dimensions, 15 or 50 neighbours, 10, 20 or 40 components); the setting with the highest mean
# validation accuracy over the three label counts, and as its length the fewest steps within half a
# point of that setting's best. Fine-tuning's head learning rate ($10^{-3}$), the head's width, the
# weight decay and the self-training schedule were fixed; the *whole* arm had one candidate, so only
# its length was chosen; self-training was kept because it beat the chosen frozen head. Sections 4 and
# 5: the mixture's size (held-out log-likelihood), the evaluation classifier's epochs (fewest within
# 0.1 point of the best validation accuracy), and the latent GANs' recipe, by FD against the 5,000
# held-out images. First each GAN's length, the fewest of four within 10% of the lowest FD; at those
# lengths, a coordinate search from the earlier recipe, one seed per candidate: the Gaussian-noise GAN's
# learning rate ($3\cdot10^{-4}$, $10^{-3}$, $3\cdot10^{-3}$), R1 weight (1, 10, 100) and width (256,
# 512), the mixture-prior GAN's learning rate ($10^{-4}$, $3\cdot10^{-4}$, $10^{-3}$), moving average
# (none, 0.99, 0.999) and warm-up (0 or 300 steps), and the auxiliary weight (0, 0.1, 0.3, 1; mean
# per-digit FD, the lowest taken). A recipe change was kept only if it lowered the FD by more than 10%,
# more than the FD's own sampling noise (a standard deviation of 0.37 over draws of one mixture on the
# held-out images); only the Gaussian-noise GAN's learning rate changed ($10^{-3}$ to $3\cdot10^{-4}$),
# and the conditional GAN and the GANs of the other noise sizes share it. Last, each length was doubled while the shorter
# run's FD was more than 10% above the doubled run's, at most twice; the Gaussian-noise GAN's FD still
# fell at that cap. The search's GANs train on the codes of the first 55,000 training images, the
# report's on all 60,000. The settings not searched (Adam's betas, batch 256, the discriminator's doubled
# learning rate, the linear learning-rate decay, three hidden layers, the R1 interval, the prior's 10
# components, the auxiliary classifier's 1,000 steps) and the search's starting point were tuned
# earlier against distances to the test images, so the GAN rows may carry a small selection bias
# towards the test set; $k$ is section 4's variable, not a setting. The head learning rates of *frozen* and
# *scratch* are the largest of their grids and fine-tuning's encoder learning rate the smallest, so
# wider grids might do better for these arms.
#
# **Latent GANs.** Non-saturating loss with an R1 gradient penalty on real codes ($\gamma=10$), computed
# on every fourth discriminator step with four times the weight (lazy regularisation; Karras et al.
# 2020); Adam with $\beta=(0.5, 0.9)$, batch 256, the discriminator's learning rate twice the
# generator's (Heusel et al. 2017).
#
# Every number of the report comes from one run of this notebook, top to bottom, with every model
# trained in that run, except the validation search's scores (section 3's selection table and validation
# curves), which the notebook reads from that search's stored results. The first table gives the machine,
# the training precision and the library versions. The convolutional networks run their forward passes in
# bfloat16 where the hardware computes it natively and in float32 elsewhere; losses, optimiser states,
# every metric and the latent GANs are float32, and the codes of the frozen arms and of the GANs are
# computed in float32. The validation search's GAN length curves ran in float32 and its later recipe checks
# in bfloat16; the same GAN's FD differed by up to 20% between the two precisions' classifiers, so each set
# is compared only within itself. The second table gives the run time of each section, also in units of one
# training step of section 1's $d=10$ autoencoder, averaged over that model's whole training, to compare
# machines of different speed. The third gives the recipe of every model family.

# %%
clock.finish()
display(h.ENVIRONMENT_TABLE.render(h.environment_rows()))
display(h.RUNTIME_TABLE.render(h.runtime_rows()))
display(h.RECIPE_TABLE.render(h.recipe_rows()))

# %% [markdown]
# ### Model code
#
# The convolutional encoder and decoder of every section, and the latent generator of sections 4 and 5
# (with a one-hot digit in its input in section 5), as defined in the package the notebook imports.

# %%
print(h.model_code())

# %%
# Fills in the table of headline results at the top of the report.
table = h.HEADLINE_TABLE.render(h.headline_rows())
summary_display.update(Markdown("**Headline results of this run**\n\n" + table.data))
