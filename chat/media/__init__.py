"""Provider clients for the media studio (issue 16): image edits, video, music and Midjourney."""
