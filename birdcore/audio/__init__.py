"""Audio files and time: decode, encode, check, cut into windows, cache decoded audio.

Public API: `io` (`load_audio`, `audio_info`, `check_audio`, `write_audio`, `list_audio_files`,
`AUDIO_EXTENSIONS`, `DEFAULT_SR`), `windows` (the window rule every scorer shares: `WINDOW_S`,
`MIN_LAST_S`, `window_count`, `cut_windows`, `smooth`), `cache` (`build_cache`, `open_cache`),
`display` (`wav_bytes`, `envelope`, `level_dbfs`), `inventory` (`summarise_folder`), `blocks`
(`read_blocks`: a file decoded a block at a time) and `window_stream` (`WindowStream`: `cut_windows`
over those blocks, in bounded memory).
"""
