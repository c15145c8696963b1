"""Parsers for native annotation formats shared by several sources (VOC XML, YOLO txt, ...).

They return plain Python values in the *native* convention and raise
:class:`~unihema_data.adapters.base.CorruptInputError` naming the file on malformed input.
"""
