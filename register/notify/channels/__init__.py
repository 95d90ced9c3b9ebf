"""Delivery channels, each a small class behind :class:`~register.notify.channels.base.Channel`.

A new channel is a new module here with a class that has ``name`` and ``send``; the dispatcher looks
channels up by ``name`` (the ``channel`` column of ``notify_contacts``) and knows nothing else of them.
"""
