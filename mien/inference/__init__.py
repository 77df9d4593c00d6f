"""Frame sources, face crops, the analysis pipeline, tracking, drawing and row writers."""

from mien.inference.pipeline import Pipeline, PipelineStats, Row, load_attributes
from mien.inference.sources import Frame, iter_frames
from mien.inference.summary import VideoSummarizer, VideoSummary, summarize

__all__ = ["Frame", "Pipeline", "PipelineStats", "Row", "VideoSummarizer", "VideoSummary",
           "iter_frames", "load_attributes", "summarize"]
