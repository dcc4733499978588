"""Train the digits-cnn FID feature network on the digits train split and save runner/assets/digits_cnn.pt."""

import argparse
import time

import torch
import torch.nn.functional as F

from runner.data import dequantize, load_digits, to_unit_float
from runner.metrics.digits_cnn import WEIGHTS_FILE, DigitsCNN, digits_split_labels


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Shift each image by up to max_shift pixels in each direction, filling with zeros."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b, 1), generator=generator)
    rows = dy + torch.arange(h)
    cols = dx + torch.arange(w)
    out = padded[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


@torch.no_grad()
def accuracy(net: DigitsCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images whose argmax logit equals the label."""
    net.eval()
    return (net(to_unit_float(images)).argmax(dim=1) == labels).float().mean().item()


def train(epochs: int, batch_size: int, lr: float, seed: int) -> DigitsCNN:
    """Train DigitsCNN with Adam, dequantisation noise and random 1-px shifts; deterministic on CPU."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(seed)
    data = load_digits(16)
    train_labels, test_labels = digits_split_labels()
    net = DigitsCNN()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    total_steps = epochs * -(-len(data.train) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(data.train), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = random_shift(dequantize(data.train[idx], generator), generator)
            loss = F.cross_entropy(net(x), train_labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            print(
                f"epoch {epoch + 1:3d}  loss {total / len(order):.4f}  "
                f"test acc {accuracy(net, data.test, test_labels):.4f}"
            )
    print(f"train accuracy {accuracy(net, data.train, train_labels):.4f}")
    print(f"test accuracy  {accuracy(net, data.test, test_labels):.4f}")
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(WEIGHTS_FILE))
    args = parser.parse_args()
    start = time.perf_counter()
    net = train(args.epochs, args.batch_size, args.lr, args.seed)
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, args.out)
    print(f"saved {args.out} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
