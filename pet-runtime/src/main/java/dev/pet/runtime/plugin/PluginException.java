package dev.pet.runtime.plugin;

import dev.pet.api.PetException;

/** Plugins cannot be loaded: a bad jar, an unresolvable module, a duplicate id. The message names the locations. */
public class PluginException extends PetException {
    public PluginException(String message) {
        super(message);
    }

    public PluginException(String message, Throwable cause) {
        super(message, cause);
    }
}
