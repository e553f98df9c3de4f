package dev.pet.runtime.serve;

/** A request the server refuses: the HTTP status and a message for the JSON error body. */
final class ApiError extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final int status;
    final String type;

    ApiError(int status, String type, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
    }

    static ApiError badRequest(String message) {
        return new ApiError(400, "invalid_request_error", message);
    }
}
