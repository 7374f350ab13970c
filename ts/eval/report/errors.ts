/**
 * The report writer's named errors. Each says what was expected, what came instead, and what to
 * change. Bad data (NaN points, missing series, empty models) is never an error: the charts draw
 * "no data" instead; only unusable arguments (sizes, buffer lengths) throw.
 */

/** Image or chart dimensions that cannot be drawn. */
export class ReportSizeError extends Error {
  override name = 'ReportSizeError';
}

/** A pixel buffer whose length does not match width x height x 4 bytes. */
export class PixelBufferError extends Error {
  override name = 'PixelBufferError';
}

/** A report input without the parts every report needs (summary.models). */
export class ReportInputError extends Error {
  override name = 'ReportInputError';
}
