/** The PET Runtime API and the service-provider interfaces that algorithm and model plugins implement. */
module dev.pet.api {
    requires transitive dev.pet.onnx;
    requires com.fasterxml.jackson.databind;

    exports dev.pet.api;
    exports dev.pet.api.onnximport;

    uses dev.pet.api.ModelProvider;
    uses dev.pet.api.PetAdapter;
}
