"""图像生成: placeholder until the image pipeline is merged (see chat/images)."""
