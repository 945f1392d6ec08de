"""Metric objects with update/compute/reset (PSNR, SSIM, LPIPS, FID, KID)."""
