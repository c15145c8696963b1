"""DETR training augmentation for detection batches, and padding into ``pixel_values`` + ``pixel_mask``.

As in DETR/DINO (``datasets/coco.py::make_coco_transforms('train')``): random horizontal flip, then with
probability 1/2 either a random resize of the short side to one of ``scales`` (long side <= ``max_size``), or
a resize to one of ``crop_resize_scales``, a random crop of ``crop_min..crop_max`` pixels per side and a random
resize to ``scales``. Boxes are absolute ``xyxy`` pixels here; boxes left with no area after a crop are dropped
(``keep`` tells which). :func:`pad_images` pads a list of ``(3, h, w)`` tensors to a common size (bottom/right)
and returns the ``pixel_mask`` (1 = real pixel) the model uses for valid ratios.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor


def size_with_aspect_ratio(width: int, height: int, size: int, max_size: int | None) -> tuple[int, int]:
    """DETR ``get_size_with_aspect_ratio``: ``(new_h, new_w)`` with short side ``size`` and long side <= max."""
    if max_size is not None:
        short, long = float(min(width, height)), float(max(width, height))
        if long / short * size > max_size:
            size = int(round(max_size * short / long))
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if width < height:
        return int(size * height / width), size
    return size, int(size * width / height)


def resize(image: Image.Image, boxes: Tensor, size: int, max_size: int | None):
    new_h, new_w = size_with_aspect_ratio(image.width, image.height, size, max_size)
    scale = torch.tensor([new_w / image.width, new_h / image.height] * 2)
    return image.resize((new_w, new_h), Image.BILINEAR), boxes * scale


def hflip(image: Image.Image, boxes: Tensor):
    w = image.width
    flipped = boxes[:, [2, 1, 0, 3]] * torch.tensor([-1.0, 1.0, -1.0, 1.0]) + torch.tensor([w, 0.0, w, 0.0])
    return image.transpose(Image.FLIP_LEFT_RIGHT), flipped


def crop(image: Image.Image, boxes: Tensor, top: int, left: int, height: int, width: int):
    cropped = boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype)
    cropped = torch.min(cropped.reshape(-1, 2, 2), torch.tensor([width, height], dtype=boxes.dtype)).clamp(min=0)
    keep = (cropped[:, 1, :] > cropped[:, 0, :]).all(-1)
    return image.crop((left, top, left + width, top + height)), cropped.reshape(-1, 4), keep


@dataclass
class DetrAugment:
    scales: tuple[int, ...] = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
    max_size: int = 1333
    crop_resize_scales: tuple[int, ...] = (400, 500, 600)
    crop_min: int = 384
    crop_max: int = 600
    hflip_prob: float = 0.5

    def __call__(self, image: Image.Image, boxes: Tensor, rng: random.Random):
        """Returns ``(image, boxes xyxy abs, keep (N,) bool)``."""
        keep = torch.ones(len(boxes), dtype=torch.bool)
        boxes = boxes.reshape(-1, 4).float()
        if rng.random() < self.hflip_prob:
            image, boxes = hflip(image, boxes)
        if rng.random() < 0.5:
            image, boxes = resize(image, boxes, rng.choice(self.scales), self.max_size)
        else:
            image, boxes = resize(image, boxes, rng.choice(self.crop_resize_scales), None)
            w = rng.randint(min(self.crop_min, image.width), min(image.width, self.crop_max))
            h = rng.randint(min(self.crop_min, image.height), min(image.height, self.crop_max))
            top, left = rng.randint(0, image.height - h), rng.randint(0, image.width - w)
            image, boxes, keep = crop(image, boxes, top, left, h, w)
            image, boxes = resize(image, boxes, rng.choice(self.scales), self.max_size)
        return image, boxes, keep


def pad_images(images: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``(3, h_i, w_i)`` tensors -> ``pixel_values (B, 3, H, W)`` zero-padded bottom/right, ``pixel_mask (B, H, W)``."""
    height = max(img.shape[1] for img in images)
    width = max(img.shape[2] for img in images)
    pixel_values = images[0].new_zeros(len(images), 3, height, width)
    pixel_mask = torch.zeros(len(images), height, width, dtype=torch.long)
    for i, img in enumerate(images):
        pixel_values[i, :, : img.shape[1], : img.shape[2]] = img
        pixel_mask[i, : img.shape[1], : img.shape[2]] = 1
    return pixel_values, pixel_mask
