"""The text progress bar of Model.train, on stderr.

On a terminal the line is rewritten in place at most 10 times a second;
otherwise (a log file, a CI job) one line is printed every 5 seconds and at
the end, so that logs stay readable. With the number of batches known (the
iterable has a length, or train(total=...)) it draws a bar:

  train fm: [##########----------]  50%  117/235 batches  29952 examples  14210 examples/s  loss 0.5513  accuracy 0.8041
"""
import sys
import time


class Progress:
    def __init__(self, label, total=None, stream=None, width=20):
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.interval = 0.1 if self.tty else 5.0
        self.start = time.monotonic()
        self.last = None

    def line(self, totals):
        seconds = max(time.monotonic() - self.start, 1e-9)
        parts = [f"{self.label}:"]
        if self.total:
            done = min(totals.requests / self.total, 1.0)
            filled = int(round(done * self.width))
            parts.append("[" + "#" * filled + "-" * (self.width - filled) + "]")
            parts.append(f"{done * 100:3.0f}%")
            parts.append(f"{totals.requests}/{self.total} batches")
        else:
            parts.append(f"{totals.requests} batches")
        parts.append(f"{totals.examples} examples")
        parts.append(f"{totals.examples / seconds:.0f} examples/s")
        parts.append(f"loss {totals.loss():.4f}")
        if totals.has_accuracy:
            parts.append(f"accuracy {totals.accuracy():.4f}")
        return "  ".join(parts)

    def update(self, totals, final=False):
        now = time.monotonic()
        if not final:
            # A terminal shows the first line at once; a log waits an interval.
            since = self.last if self.last is not None else (
                None if self.tty else self.start)
            if since is not None and now - since < self.interval:
                return
        self.last = now
        text = self.line(totals)
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
