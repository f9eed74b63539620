"""Offline speech: caller audio over AudioSocket -> recognizer -> request category.

- :mod:`ivr.speech.schema`: ``config/intents.yaml`` (categories, urgency, engine settings).
- :mod:`ivr.speech.classifier`: pure naive Bayes classifier built from the intents.
- :mod:`ivr.speech.engines`: pocketsphinx (default, domain LM) and vosk behind one interface;
  :mod:`ivr.speech.whisper` (Whisper tiny.en) and :mod:`ivr.speech.combination`
  (pocketsphinx, Whisper when its words make no confident request) behind the same one.
- :mod:`ivr.speech.pool`: recognizer CPU work on worker threads, capped streams.
- :mod:`ivr.speech.endpointing`: pure start/end-of-utterance detection.
- :mod:`ivr.speech.audiosocket`: the Twisted AudioSocket server the call flows await.
- :mod:`ivr.speech.cli`: ``ivr classify``.
- :mod:`ivr.speech.testing`: fake engine and AudioSocket frames for tests.
"""
