"""A desktop window for development, on tkinter (stdlib; imported only when a window is opened).

tkinter rather than pygame: no pip dependency and no SDL wheel, and Tk's PhotoImage takes a binary
PPM directly, so not even Pillow's ImageTk is needed. Keys are passed to ``on_key`` (e.g. ``i``/``o``
select the In/Out direction like the buttons; ``t`` shows the today list in the dev loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from hardware.display.base import Display, DisplayError, DisplayUnavailable


def ppm(image: Image.Image) -> bytes:
    """``image`` as binary PPM (P6), the format Tk reads natively."""
    rgb = image.convert("RGB")
    return b"P6 %d %d 255\n" % rgb.size + rgb.tobytes()


class WindowDisplay(Display):
    """A window the size of the screen; :meth:`show` also processes window events, so call it often."""

    def __init__(
        self,
        size: tuple[int, int] = (1024, 600),
        *,
        title: str = "kgate",
        on_key: Callable[[str], None] | None = None,
    ) -> None:
        try:
            import tkinter  # noqa: PLC0415
        except ImportError as exc:
            raise DisplayUnavailable("tkinter is not installed (apt install python3-tk)") from exc
        self.size = size
        self.on_key = on_key
        self.closed = False
        try:
            self._root: Any = tkinter.Tk()
        except tkinter.TclError as exc:
            raise DisplayUnavailable(f"cannot open a window (is $DISPLAY set?): {exc}") from exc
        self._root.title(title)
        self._root.resizable(False, False)
        self._root.protocol("WM_DELETE_WINDOW", self.close)
        self._root.bind("<Key>", self._key)
        self._photo: Any = tkinter.PhotoImage(width=size[0], height=size[1])
        self._label: Any = tkinter.Label(self._root, image=self._photo, borderwidth=0)
        self._label.pack()
        self._tk = tkinter

    def _key(self, event: Any) -> None:
        if self.on_key is not None and event.char:
            self.on_key(event.char)

    def show(self, image: Image.Image) -> None:
        if self.closed:
            raise DisplayError("the window was closed")
        photo = self._tk.PhotoImage(data=ppm(image), format="PPM")
        self._label.configure(image=photo)
        self._photo = photo  # Tk drops images nobody in Python references
        self._root.update()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._root.destroy()
