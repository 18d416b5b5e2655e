"""vid2robot: video-conditioned robot policies (Vid2Robot), their data, training and deployment."""

__version__ = "0.1.0"
