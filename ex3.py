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
# A small convolutional autoencoder compresses an MNIST digit to about ten numbers. The report takes the
# exercise's five questions in turn: bottleneck layers and code size $d$; correlation of the code; transfer from
# few labels; a latent GAN and interpolation; generating a requested digit. Two theory answers follow.
#
# **Winners:** a side wins when the 95% Student t interval of the paired differences (same seeds, draws or image
# pairs) excludes zero; otherwise the two are *level*: undetermined, not equal.

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
# The 60,000 training and 10,000 test digits, zero-padded to 32x32, in [0, 1]. Every model trains on the first
# 55,000 training images (the latent models on their codes); the last 5,000 are held out, and every searched
# setting was chosen on them (Appendix B). Some fixed settings, the latent GANs' search space among them, date
# from exploratory runs scored on test images (recipe table); otherwise the test images are used once, for the
# reported numbers.

# %%
train_x, train_y = h.load_mnist(train=True)
test_x, test_y = h.load_mnist(train=False)
print(f"{len(train_x):,} training and {len(test_x):,} test images of {tuple(train_x.shape[1:])} pixels in [0, 1]")
print("test digits per class:", test_y.bincount().tolist())

# %% [markdown]
# ## 1. A convolutional autoencoder
#
# **Model.** The encoder's trunk, three stride-2 3x3 convolutions (16, 32, 64 channels) with BatchNorm and
# ReLU, takes the image to a 4x4x64 map; the decoder mirrors it with transposed convolutions and a sigmoid.
# Six designs join the map to the $d$-dimensional code, mirrored in the decoder: **linear**, one linear map;
# **fc128** and **fc512**, one hidden ReLU layer of 128 or 512 units; **fc2x512**, two of 512; **conv**, a
# stride-2 convolution to a 2x2x64 map, then a 2x2 convolution to $d$ channels; **conv_wide**, the same with
# 160 channels (640 hidden units with shared weights, as many parameters as fc128). All train with binary
# cross-entropy for 10 epochs at the learning rate chosen for fc512 at $d = 10$; the $d = 10$ fc512 model of
# sections 3-5 trains to its plateau, 40 epochs (Appendix B). The score is the test MSE per pixel on the 28x28
# digit area.

# %%
s1 = h.train_autoencoder_study(train_x)
clock.use_unit(*s1.trained[s1.sweep[h.RECIPE.report_d, 0]])  # the run's cost unit: this model's seconds per step
scores = h.reconstruction_scores(s1, test_x)

# %% [markdown]
# ### 1a. The layers between the trunk and the code ($d = 10$)

# %%
designs = h.design_rows(s1, scores)
display(h.DESIGN_TABLE.show(designs))

# %% [markdown]
# **Result.** The linear map is the worst design and the wide fully connected layers the best: in each of
# three seeds, fc512 and fc2x512 lie below every other design (trained at one seed). fc512 and fc2x512 are
# level (paired over seeds); the report uses fc512, two thirds of the size.
#
# **Why width helps.** A linear map can only pick $d$ directions of the trunk's features. A hidden ReLU layer
# first cuts its input into regions, so the code can use different features for different digits, and more
# hidden units cut finer. The error falls with the units before the code: none (linear), 128 (fc128), 640
# shared (conv_wide), 512 unshared (fc512); conv's 256 shared units lie between linear and fc128. At equal
# parameter count conv_wide lies below fc128 by more than three times the seed spread: five times the hidden
# units outweigh unshared weights. These one-seed orderings are measured against fc512's seed spread, not the
# paired rule.

# %% [markdown]
# ### 1b. Latent size against PCA
#
# PCA, the best linear code of size $d$ for squared error, is fitted on the same 55,000
# digits.

# %%
pca = h.pca_reconstructions(train_x[:h.RECIPE.ae_train_size], test_x, h.RECIPE.sweep_ds)
sweep = h.sweep_rows(s1, scores, pca, test_x)
h.record_metrics({"ae.epochs": h.RECIPE.sweep_epochs, "ae.report_epochs": h.RECIPE.ae_epochs, "ae.seeds": len(h.RECIPE.seeds)})
display(h.SWEEP_TABLE.show(sweep))
h.plot_sweep(sweep)
plt.show()

# %% [markdown]
# **Result.** The autoencoder beats PCA at every $d$, at $d = 10$ by a factor of more than three. Its error
# falls steeply up to $d = 32$ and then stops: at 10 epochs $d = 64$ is no better than $d = 32$, and its three
# seeds spread by 9% of the error, those at $d = 4$ and 10 by about 1%. **Why:** PCA projects onto
# a flat subspace, while the digits lie near a curved set of about 14 dimensions (section 2), which a
# nonlinear code follows far more closely. A larger code also needs longer training: at $d = 64$ the validation
# error is still falling at 80 epochs, while $d = 10$ levels off by 40 (Appendix A; the longer runs use the
# rate chosen for them), so at one fixed length the sweep understates what large codes gain.

# %%
rows = {"test digits": test_x[:12], **{f"d = {d}": h.reconstruct(s1.model(d), test_x[:12]) for d in h.RECIPE.sweep_ds}}
h.plot_image_rows(rows, "The first 12 test digits and their reconstructions (fc512, seed 0)", "reconstructions",
                  col_labels=[str(i + 1) for i in range(12)])
plt.show()
clock.section(1)

# %% [markdown]
# **Reconstructions.** At $d = 2$ some digits change identity; from $d = 8$ on all twelve keep it, and larger
# codes add stroke detail.

# %% [markdown]
# ## 2. How correlated are the latent coordinates?
#
# **Number.** The mean absolute off-diagonal Pearson correlation of the 10,000 test codes,
# $\overline{|r|} = \frac{1}{d(d-1)}\sum_{i\neq j}|R_{ij}|$, at seed 0 with a 95% bootstrap interval over the test
# images, and at seeds 0 to 2 for $d = 4$, 10 and 64. As a mean over pairs can hide redundancy among many
# coordinates, the second table adds the correlation matrix's smallest eigenvalue (near 0 when a direction is
# nearly a combination of others), the TwoNN intrinsic dimension of the codes (Facco et al. 2017) and **TC**,
# the Gaussian total correlation $-\frac{1}{2}\log\det R$ per coordinate. References: PCA codes and the
# untrained encoder at three initialisations.

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
# **Result.** A larger code does not have more correlated coordinates pair by pair: over the three seeds,
# $\overline{|r|}$ at $d = 64$ is level with $d = 4$, and at $d = 4$, 10 and 64 the trained codes are level with
# the untrained encoder's. Beyond pairs (second table), up to $d = 16$ trained and untrained smallest
# eigenvalues stay within a factor of two, while at $d = 64$ the trained one falls more than 300 times below the
# untrained encoder's in every seed (at $d = 32$, seed 0, 14 times): some directions of a large code become
# almost combinations of the others, and at $d = 64$ the TC is 4 to 5.5 times the untrained encoder's.
#
# **Why.** Reconstruction does not reward decorrelated coordinates: the decoder can undo any invertible mixing
# of the code. A random encoder's coordinates are already mixes of the same trunk features, hence correlated,
# and training leaves that level where it is. What matters is how many directions the data need. The test images' TwoNN dimension is about 14.
# The codes' own dimension equals $d$ up to $d = 4$, then grows more slowly and levels off near 10.5 from $d = 32$
# on. Up to $d = 16$ at most 7 coordinates are spare; at 32 and 64 about 20 and 50 are, and nothing in the loss
# stops training from spending them on directions the others already determine.

# %% [markdown]
# ## 3. Transfer learning from tens of labels
#
# **Setup.** The pretrained encoder is the $d = 10$ fc512 autoencoder (seed 0); a classifier is this encoder, a
# fixed standardisation of its codes and an MLP head of 512 hidden units. Six arms:
#
# * **frozen**: only the head learns; **finetune**: the encoder too, at its own smaller rate, BatchNorm
#   statistics included;
# * **whole**: the pretrained network at one rate, with random shifts of the images; **scratch**: the same
#   network from random weights;
# * **selftrain**: the frozen head, then five rounds of pseudo-labels on the unlabelled codes (Lee 2013);
# * **cluster**: cluster-then-label (McConville et al. 2020): UMAP and a 10-component Gaussian mixture
#   cluster the unlabelled codes; each cluster takes the digit its labelled images vote for (three fits).
#
# Each arm keeps the settings and length its own search chose on the held-out images (Appendix A), so only
# frozen and finetune differ in one thing. Ten class-balanced draws of labelled training images per label
# count; every arm of a draw sees the same images.

# %%
report_ae = s1.report_model()
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
clock.section(3)

# %% [markdown]
# **Result: frozen against the whole network** (paired table). The frozen encoder with a small head leads
# the whole network only at 10 labels, by about 2 points with an interval that barely excludes zero, is level
# at 20, and falls behind from 50 labels on. Fine-tuning changes one thing against the frozen arm, the
# encoder's learning: it is level at 10 labels and ahead from 20 on. Training from scratch trails every
# pretrained arm by at least 9 points up to 100 labels.
#
# **Why.** The pretrained codes already group the digits (cluster-then-label, below). With one label per digit
# every network arm fits its labelled images perfectly (table, brackets) and there is little to add: the moving
# encoder of finetune gains nothing over frozen. The whole arm's deficit at 10 and 20 labels comes from its other
# settings (one rate, shifts, length), since fine-tuning beats it there. With more labels the encoder, moving at
# about a third of the head's rate, adjusts the codes to the labels while keeping what pretraining learned.
#
# **Unlabelled images help most.** Self-training beats the frozen head up to 100 labels and loses at 1,000 by
# a quarter of a point, where its many pseudo-labels, some wrong, outweigh the real ones: it fits only 96% of
# its labelled images (frozen: 98%). Cluster-then-label beats self-training at every number of labels and
# scores 97.3% from 20 labels on, with a standard deviation of 0.02 points over the draws. **Why:** its ten
# components follow the digit groups, each named by the labelled images it holds; once every component gets a
# correct vote, more labels change nothing, and the accuracy is the components' purity. The draws use the three
# fits in turn, so that spread includes the fits' differences.

# %% [markdown]
# ## 4. A GAN in the autoencoder's latent space
#
# **Scores.** A small CNN classifier trained on the first 55,000 training images defines a Fréchet distance
# (**FD**: the FID's formula, Heusel et al. 2017, in this classifier's 128 penultimate features) and labels
# generated digits. Each sampler's 5,000 samples are compared with the 10,000 test images. **Precision** and
# **recall** (Kynkäänniemi et al. 2019): the share of samples within some real digit's distance to its 5th
# nearest real neighbour, and of real digits likewise near samples; coverage (Naeem et al. 2020) in the table.

# %%
clf, _ = h.evaluation_classifier(train_x, train_y)
held_x, held_y = h.validation_data("validation")  # real digits the classifier never saw
test_feats, test_probs = h.classify(clf, test_x)
held_feats, held_probs = h.classify(clf, held_x)
references = {"accuracy": float((test_probs.argmax(1) == test_y.numpy()).mean()), "images": len(held_x),
              "floor": h.frechet_distance(held_feats, test_feats),
              "recon": h.frechet_distance(h.classify(clf, h.reconstruct(report_ae, held_x))[0], test_feats)}

# %% [markdown]
# ### The latent GAN
#
# Generator and discriminator are MLPs on standardised codes, trained with the non-saturating loss and an R1
# penalty (Mescheder et al. 2018); generated codes pass through the frozen decoder. The **Gaussian-noise GAN**
# draws $k = 8$ noise dimensions (three seeds; $k = 2$, 4 and 16 at seed 0, same recipe). Baselines: one
# full-covariance Gaussian, and Gaussian mixtures of 10 and 200 components (Ghosh et al. 2020). Each seed's FD is the mean of three sample draws.

# %%
# the codes of the autoencoder's own training images: every latent model of sections 4-5 fits them
train_codes = h.encode(report_ae.encoder, train_x[:h.RECIPE.ae_train_size])
test_codes = h.encode(report_ae.encoder, test_x)
gans = h.train_section4_gans(report_ae.config, train_codes)
samplers = h.section4_samplers(gans, train_codes)
generated = h.sampler_rows(samplers, report_ae.decoder, clf, test_feats)
draws = h.fd_sample_noise(samplers["k8", 0], report_ae.decoder, clf, test_feats)
h.record_metrics({"gan.fd.sample_noise_std": float(np.std(draws, ddof=1)), "gan.fd.sample_noise_draws": len(draws),
                  "gan.fd.seed_draws": h.RECIPE.fd_seed_draws, "gan.seeds": len(h.RECIPE.gan_seeds)})

# %%
floors = [{"sampler": "held-out real images (floor)", "fd_seeds": [references["floor"]]},
          {"sampler": "their reconstructions", "fd_seeds": [references["recon"]]},
          {"sampler": f"GAN, Gaussian noise k=8, seed 0: {len(draws)} sample draws", "seeds": 1, "fd_seeds": draws}]
display(h.SAMPLER_TABLE.show(generated, unrecorded=floors))
display(h.SAMPLER_PAIRS_TABLE.show(h.sampler_pair_rows(generated)))

# %%
h.plot_digit_grid(h.decode(report_ae.decoder, h.sample_codes(gans["k8", 0].generator, 64, seed=7)),
                  "64 samples of the latent GAN with Gaussian noise (k=8), seed 0, decoded", "gan_samples")
plt.show()

# %% [markdown]
# **Result** (paired table; seeds paired by index, each side's FD holding its seed and draw noise). The
# 200-component mixture has a lower FD than the Gaussian-noise GAN, and the GAN a lower FD than the
# 10-component mixture. The mixture lies below the held-out real images' FD, a scale rather than a floor
# (Appendix A). A single Gaussian has the worst FD
# and precision but the highest recall: a wide cloud. Most of the GAN's samples (grid) are clear digits of
# every class; a few are malformed.
#
# **Noise size** (one seed each, same recipe). The FD falls from $k = 2$ to 8, and $k = 16$ is no better than
# $k = 8$; recall collapses at $k = 2$ and is lower at 4: a generator cannot spread fewer noise dimensions over a
# set of higher dimension, and the codes' intrinsic dimension at $d = 10$ is about 8 (section 2).
#
# **Why a large mixture does best.** The codes form separate clusters, one or a few per digit. A
# 200-component mixture puts Gaussians on each; ten are too few to follow their shapes. A generator must tear
# its connected noise into pieces, which a smooth network can only approximate with steep transitions (see the
# interpolations below).

# %% [markdown]
# ### Interpolation: in the GAN's noise space against in the autoencoder's latent space
#
# The same 200 pairs of test images of different digits are joined in 10 steps by three paths: the **AE line**
# between their codes, and, through the Gaussian-noise GAN ($k = 8$, seed 0), the **GAN line** and the **GAN
# slerp** (a great circle; White 2016) between the noise vectors that best regenerate the two codes. Realism of
# the 8 inner images: FD and classifier confidence. Smoothness: the largest step in
# classifier features as a share of the path, and the label changes. Density: the distance to the nearest
# training code.

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
display(h.INTERP_PAIRS_TABLE.show(h.interp_pair_rows(interp)))
density = h.path_density(code_paths, train_codes)
h.record_metrics(h.density_metrics(density))
h.plot_path_density(density)
plt.show()
clock.section(4)

# %% [markdown]
# **Which is better depends on the criterion** (tables, over the 200 pairs of one GAN). The GAN's paths are
# more realistic: a lower FD and a higher confidence than the AE line, which often draws faint blends midway
# (pair 1 in the strips). The GAN's paths end at the generator's copies of the two codes (inversion error
# above). The AE line is smoother: a smaller largest step, more paths with one label change, fewer through a
# third digit. The GAN's line and slerp are level on every paired statistic, but the slerp's FD is lower.
#
# **Why.** Along the AE line the distance to the nearest training code peaks about a fifth above its value at
# the ends; along the GAN's line about 1% above (figure). A straight line between codes of different digits
# crosses the empty space between their clusters, where the decoder draws blends. The GAN maps its connected
# noise onto the clusters, so its line stays near the data and jumps between clusters, through whatever cluster
# lies between (pair 1 passes an 8 and a 6). The slerp strays almost as far as the AE line yet stays realistic:
# distance explains the AE line's blends, not all of realism. A straight line's middle has a smaller norm than
# typical noise, which the slerp keeps (White 2016): hence its lower FD.

# %% [markdown]
# ## 5. A generator that takes the digit as input
#
# **Design.** A conditional GAN in the same latent space (Mirza & Osindero 2014), with the Gaussian-noise
# GAN's architecture. The generator gets the noise ($k = 8$) **concatenated with a one-hot vector of the
# requested digit**, so only the shape is random; a **projection discriminator** (Miyato & Koyama 2018) judges
# whether a code is realistic *for that digit*; a frozen **auxiliary classifier** of codes adds 0.1 times its
# cross-entropy for the requested digit to the generator's loss (AC-GAN, Odena et al. 2017). The ablation
# trains weights 0.1 and 0 at three seeds, sharing initial weights, batches, noise and the recipe chosen for
# 0.1. **Scores** on 1,000 samples per digit: **recognised**, the share the evaluation classifier reads as the
# requested digit; the **spread ratio**, the recognised samples' feature spread over that of the recognised
# reconstructions of real test digits; precision, recall and FD.

# %%
cgans = h.train_section5_gans(report_ae.config, train_codes, train_y)
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
digits = h.digit_rows(per_digit)
fake_x, fake_y = h.balanced_generated(report_ae.decoder, cgans[h.RECIPE.cgan_aux_weight, 0].generator, h.RECIPE.cas_size)
real_idx = h.balanced_subset(train_y, h.RECIPE.cas_size, seed=7)
cas = {"n": h.RECIPE.cas_size, "generated": h.train_on_generated_accuracy(fake_x, fake_y, test_x, test_y),
       "real": h.train_on_generated_accuracy(h.reconstruct(report_ae, train_x[real_idx]), train_y[real_idx], test_x, test_y)}

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
display(picker)  # live in Jupyter; the figure below is its static copy at digit 3, noise seed 0
show_digit(3, seed=0)
plt.show()
clock.section(5)

# %% [markdown]
# **Result** (ablation table; three seeds, paired). With weight 0.1 the requested digit is recognised more
# often, on average and for the worst digit, and precision is higher; the price is variety: the spread ratio
# falls by about 0.03 and recall by about 0.04. All five differences keep their sign in every seed and pass
# the paired rule; the mean per-digit FD is lower in every seed but level under the rule.
#
# **The noise carries the style.** In the first grid each column shares one noise vector and one style (slant,
# stroke weight, width) while the digit follows the row. Along a walk through the noise with the digit fixed,
# the 2 changes gradually: its slant, stroke weight and width drift, and the loop at its base opens or closes.
#
# **Why the term trades variety for recognition.** It pulls codes towards where its classifier is sure, the
# centres of the digit clusters: recognition rises and each digit's spread shrinks. The generated digits are
# even recognised more often than reconstructions of real test digits (Appendix A): they are typical shapes.

# %% [markdown]
# ## Conclusion
#
# 1. **Autoencoder.** At $d = 10$ the autoencoder's test error is less than a third of PCA's; wide fully
#    connected bottleneck layers work best.
# 2. **Correlation.** A larger code is not more correlated pair by pair, but far above the data's intrinsic
#    dimension some of its directions become near-combinations of others.
# 3. **Transfer.** The frozen encoder helps only at 10 labels; from 20 on, a slowly learning encoder does better.
#    Cluster-then-label reaches 97% from 20 labels.
# 4. **Latent GAN.** A 200-component mixture beats the GAN, which beats a 10-component mixture. GAN paths are
#    more realistic, code-space lines smoother.
# 5. **Conditional generator.** The requested digit in more than 99% of samples; the noise carries the style.

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
# ## Appendix A: supporting studies
#
# ### Section 1: learning curves and the plateau
#
# The held-out error after each epoch of section 1's models (seed 0); then, from the validation search, each
# studied size's validation error at section 1's 10 epochs (three seeds) against longer runs, and the plateau:
# the length where one more doubling lowers the error by less than the seed spread. Section 1 compares the
# designs and sizes at 10 epochs, not at their plateaus.

# %%
h.plot_learning_curves(s1)
plt.show()
display(h.PLATEAU_TABLE.show(h.plateau_rows()))
h.plot_autoencoder_lengths(h.autoencoder_lengths())
plt.show()

# %% [markdown]
# ### Section 3: the validation search and a control
#
# Each arm's candidates were scored by mean validation accuracy over three class-balanced draws at 10, 100 and
# 1,000 labels, drawn apart from the report's; the table gives each arm's choice and the figure the validation
# curves of the four arms trained by steps (frozen, finetune, whole, scratch), with the chosen length (for each
# number of labels the fewest steps within half a point of the curve's best; the arm takes the longest) marked.
# The control trains the fine-tuning code with encoder learning rate 0, BatchNorm statistics frozen and the
# frozen arm's other settings, on one class-balanced draw of 10 labels: it reproduces the frozen arm's accuracy,
# so the fine-tuning code adds nothing but the encoder's learning (in the report's fine-tuning arm, that includes
# the BatchNorm statistics).

# %%
display(h.SELECTION_TABLE.show(h.selection_rows()))
h.plot_transfer_validation(h.transfer_selection())
plt.show()
display(h.CONTROL_TABLE.show([control]))

# %% [markdown]
# ### Section 4: the evaluation classifier
#
# The evaluation classifier's test accuracy, and two references of the FD: the 5,000 held-out real images
# (labelled "floor" in the tables) and their reconstructions by the autoencoder. They are not floors for the
# samplers: both come from the last 5,000 training images, while the samplers fit the codes of the first 55,000,
# and the 200-component mixture scores below both (section 4's table). They give the scale of an FD between
# two sets of real digits, not a bound.

# %%
display(h.REFERENCES_TABLE.show([references]))

# %% [markdown]
# ### Section 5: recognition ceilings, digits, and training on generated digits
#
# The share of reconstructed test digits that the evaluation classifier recognises as their label, and the
# auxiliary classifier's accuracy on test codes; the per-digit scores of the weight-0.1 generator (seeds
# averaged); and *train on generated, test on real* (Ravuri & Vinyals 2019): the evaluation classifier's
# recipe trained on 20,000 generated digits, beside the same trained on 20,000 reconstructed real ones (one
# generator and one classifier each, so no verdict).

# %%
display(h.CEILING_TABLE.show([ceiling]))
display(h.DIGIT_TABLE.show(digits))
display(h.CAS_TABLE.show([cas]))

# %% [markdown]
# ## Appendix B: recipes and reproducibility
#
# **How the settings were chosen.** One validation search, stored as a study per model family, chose every
# searched setting: each candidate trained on the first 55,000 training images (or their codes) and was scored
# on the 5,000 held out, never on a test image. Each family's grid was scored at one length; a learning rate
# chosen on a grid's edge extended the grid past it, and other choices left on an edge are marked. The length
# was then doubled while a doubling still improved the validation score by more than the spread between seeds
# (for the few-label arms: while the curve rose by more than half a point), and each learning rate was tried
# again at that length. The latent GANs' widths were compared at equal multiply-adds, so a narrower network
# trains for more steps. The report's models are the search's own trials at the chosen settings. The table
# below gives each family's recipe and what its search tried; settings no search covers are marked "fixed
# after earlier runs scored on test images".
#
# **Latent GANs.** Non-saturating loss with an R1 penalty on real codes on every fourth discriminator step at
# four times the weight (lazy regularisation; Karras et al. 2020); Adam with $\beta = (0.5, 0.9)$, batch 256,
# the discriminator's learning rate twice the generator's (Heusel et al. 2017); MLPs with three hidden layers of
# the searched width; the generator's learning rate decays linearly to zero over the run.
#
# **Reproducibility.** One run of this notebook, top to bottom, prints every number; it trains every model
# except those the validation search trained already under the same settings, which it reads back (the first
# table counts both). Every model trains in float32. The tables give the machine and library versions, each
# section's run time (also in training steps of section 1's $d = 10$ autoencoder, so that machines of different
# speed compare), and every model family's recipe with how its settings were chosen.

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
