"""DTN's networks (Taigman et al. 2017): f, the source classifier whose features G keeps; g,
the decoder of f's features (a vector, or f's inner feature map); D, ternary or binary."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xdomain.nn.blocks import conv_block, deconv_block, maybe_sn


class FeatureNet(nn.Module):
    """f: (B, C, 32, 32) -> (B, feat_dim) features, plus a linear head for f's pretraining.

    The reference architecture: three stride-2 convs (32 -> 16 -> 8 -> 4) and a 4x4 valid conv
    to a 1x1 feature map, which is also g's input.
    """

    def __init__(self, channels: int, width: int, feat_dim: int, num_classes: int) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_block(channels, w, norm="none", act="lrelu"),  # (B, w, 16, 16)
            conv_block(w, 2 * w, norm="batch", act="lrelu"),  # (B, 2w, 8, 8)
            conv_block(2 * w, 4 * w, norm="batch", act="lrelu"),  # (B, 4w, 4, 4)
            nn.Conv2d(4 * w, feat_dim, 4, 1, 0),  # (B, feat_dim, 1, 1)
        )
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(feat_dim, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, feat_dim) features f(x)."""
        return self.body(x).flatten(1)

    def logits(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_classes) class logits."""
        return self.head(self(x))

    def feature_map(self, x: Tensor, layer: int) -> Tensor:
        """An inner layer: 1 -> (B, 2w, 8, 8), 2 -> (B, 4w, 4, 4); it keeps where the ink is."""
        return self.body[: layer + 1](x)


class Decoder(nn.Module):
    """g: (B, in_dim) -> (B, C, 32, 32) in [-1, 1]; transposed convs 1 -> 4 -> 8 -> 16 -> 32."""

    def __init__(self, in_dim: int, width: int, channels: int, norm: str = "batch") -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            deconv_block(in_dim, 4 * w, 4, 1, 0, norm=norm),  # (B, 4w, 4, 4)
            deconv_block(4 * w, 2 * w, norm=norm),  # (B, 2w, 8, 8)
            deconv_block(2 * w, w, norm=norm),  # (B, w, 16, 16)
            nn.ConvTranspose2d(w, channels, 4, 2, 1),  # (B, C, 32, 32)
            nn.Tanh(),
        )

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h[:, :, None, None])


class MapDecoder(nn.Module):
    """g for spatial codes: (B, M + K, S, S) -> (B, C, 32, 32), S = 8 or 4, by 2x transposed
    convs. With `squeeze` > 0 a 1x1 conv first narrows f's map (M channels) to `squeeze`
    channels, a bottleneck that leaves the class to the K probabilities and keeps the map for
    where the ink is; a 3x3 conv then mixes the two."""

    def __init__(
        self, map_ch: int, n_cls: int, size: int, width: int, channels: int, norm: str, squeeze: int
    ) -> None:
        super().__init__()
        w = width
        self.map_ch = map_ch
        self.squeeze = nn.Conv2d(map_ch, squeeze, 1) if squeeze > 0 else nn.Identity()
        in_ch = (squeeze if squeeze > 0 else map_ch) + n_cls
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, 4 * w, 3, 1, 1),
            nn.BatchNorm2d(4 * w) if norm == "batch" else nn.Identity(),
            nn.ReLU(),
        ]
        ch = 4 * w
        while size < 16:
            layers.append(deconv_block(ch, ch // 2, norm=norm))  # doubles S
            ch, size = ch // 2, size * 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]  # (B, C, 32, 32)
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        fmap, probs = h[:, : self.map_ch], h[:, self.map_ch :]  # (B, M, S, S), (B, K, S, S)
        return self.net(torch.cat([self.squeeze(fmap), probs], 1))


class Discriminator(nn.Module):
    """D: (B, C, 32, 32) -> (B, n_out) logits; n_out = 3 (ternary) or 1 (binary)."""

    def __init__(self, channels: int, width: int, n_out: int, norm: str, sn: bool) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            conv_block(channels, w, norm="none", act="lrelu", sn=sn),  # (B, w, 16, 16)
            conv_block(w, 2 * w, norm=norm, act="lrelu", sn=sn),  # (B, 2w, 8, 8)
            conv_block(2 * w, 4 * w, norm=norm, act="lrelu", sn=sn),  # (B, 4w, 4, 4)
            maybe_sn(nn.Conv2d(4 * w, n_out, 4, 1, 0), sn),  # (B, n_out, 1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(1)
