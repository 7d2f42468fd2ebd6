"""Raw restoration (joint denoising + demosaicing) with a pix2pix-style conditional GAN, or L1 only.

noisy packed raw (4) + noise-variance map (4) --U-Net generator--> (+ bilinear demosaic of the input,
    ``residual``) camera RGB x as-shot WB gains = white-balanced linear camera RGB at full resolution
    (the target, see :mod:`rawcv.data.restore`)

* the generator is ``unet_generator`` (``in_chans = 8``); its variance input is
  ``lambda_shot * max(x, 0) + lambda_read`` per packed channel (Brooks et al. 2019), computed from
  the noisy values, multiplied by a fixed ``variance_scale`` (100: numbers of order 1);
* the discriminator is the 70x70 PatchGAN ``patchgan70`` on ``concat(condition, image, detail)``
  (``in_chans = 4 + 3 + 3``): the condition is the packed raw upsampled (nearest) to full
  resolution; both are shown to it sRGB-encoded so that shadow detail counts as it does to the eye
  (the curve continued below 0 and above 1, so that values a generator puts outside [0, 1] stay
  visible to it), and the image's fine-detail band as channels of its own, so that it sees early
  what a smoothing generator loses (:mod:`~rawcv.train.restore.gan`);
* losses: adversarial (BCE-with-logits, or least squares ``gan_loss="lsgan"``) + ``lambda * L1``
  with ``lambda = 100``; Adam ``lr 2e-4, beta1 0.5`` for both networks; ``l1_only`` drops the
  discriminator (the same ``100 * L1`` objective, for comparison). The logged training loss is
  the L1 term alone in both modes; the GAN also logs ``d_loss``, ``g_adv``, ``d_real``, ``d_fake``
  per epoch.

Prediction tiles large images with overlap (blended so that every output pixel comes from a
tile's interior) and finishes with the ISP's own display stages (:func:`camera_to_output`).
Evaluation compares with the classical baselines of :mod:`rawcv.baselines`, computed in the same
run on the same images.

Modules, by concern: :mod:`~rawcv.train.restore.generator` (its input and output),
:mod:`~rawcv.train.restore.gan` (the discriminator's view, GAN losses, the discriminator in a
checkpoint), :mod:`~rawcv.train.restore.task` (engine task and trainer),
:mod:`~rawcv.train.restore.training` (:func:`train_restorer`), :mod:`~rawcv.train.restore.tiling`,
:mod:`~rawcv.train.restore.predict`, :mod:`~rawcv.train.restore.metrics`,
:mod:`~rawcv.train.restore.evaluate` and :mod:`~rawcv.train.restore.figures`. The options of a
run are :class:`rawcv.options.RestoreOptions`.
"""

from ...baselines import NLM_DEFAULTS, baseline_nlm_vst, classical_baselines, gat, gat_inverse
from ...options import GAN_LOSSES, L1_WEIGHT, VARIANCE_SCALE, RestoreOptions
from .evaluate import evaluate_restore, format_restore_table
from .figures import SIDE_BY_SIDE_PNG, side_by_side
from .gan import (DEFAULT_D_VIEW, DEFAULT_DISCRIMINATOR, DEFAULT_DISCRIMINATOR_KWARGS, D_DETAIL_SIGMA, D_VIEW,
                  DISCRIMINATOR_CHANNELS, DISCRIMINATOR_VIEW, build_discriminator, discriminator_channels,
                  discriminator_pair, display_view, gan_criterion, gaussian_blur, require_trained_view)
from .generator import (DEFAULT_GENERATOR, DEFAULT_GENERATOR_KWARGS, GENERATOR_CHANNELS, generate_batch,
                        generator_input, generator_options)
from .metrics import detail_band, high_frequency_detail, psnr, ssim
from .predict import (camera_to_output, load_restorer, noise_for, output_stages, predict_restore_files,
                      restore_packed, restore_raw)
from .task import TASK, RestorationTask, RestoreTrainer
from .tiling import tiled_apply
from .training import train_restorer

__all__ = ["RestorationTask", "RestoreTrainer", "RestoreOptions", "train_restorer", "tiled_apply",
           "load_restorer", "generator_options", "restore_packed", "restore_raw", "camera_to_output", "output_stages",
           "predict_restore_files", "evaluate_restore", "format_restore_table", "generator_input", "generate_batch",
           "discriminator_pair", "discriminator_channels", "display_view", "gaussian_blur", "gan_criterion",
           "build_discriminator", "require_trained_view", "psnr", "ssim", "detail_band", "high_frequency_detail",
           "noise_for", "side_by_side",
           # the classical baselines live in rawcv.baselines; named here too for code written before
           "gat", "gat_inverse", "baseline_nlm_vst", "classical_baselines", "NLM_DEFAULTS",
           "TASK", "GAN_LOSSES", "L1_WEIGHT", "VARIANCE_SCALE", "GENERATOR_CHANNELS", "DEFAULT_GENERATOR",
           "DEFAULT_GENERATOR_KWARGS", "DEFAULT_DISCRIMINATOR", "DEFAULT_DISCRIMINATOR_KWARGS", "D_VIEW",
           "DEFAULT_D_VIEW", "D_DETAIL_SIGMA", "DISCRIMINATOR_VIEW", "DISCRIMINATOR_CHANNELS", "SIDE_BY_SIDE_PNG"]
